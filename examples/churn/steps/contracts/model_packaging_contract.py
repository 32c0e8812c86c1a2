"""Contract of the ModelPackaging script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

MODEL_PACKAGING_CONTRACT = ScriptContract(
    entry_point="model_packaging.py",
    expected_input_paths={'model_input': '/opt/ml/processing/input/model', 'calibration_input': '/opt/ml/processing/input/calibration'},
    expected_output_paths={'packaged_model': '/opt/ml/processing/output'},
    required_env_vars=[
    ],
    optional_env_vars={'PACKAGE_NAME': 'churn-model'},
    expected_arguments={},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Bundle model, calibrator and inference code into one deployable archive.",
)
