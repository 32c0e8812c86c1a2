"""Contract of the ModelCalibration script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

MODEL_CALIBRATION_CONTRACT = ScriptContract(
    entry_point="model_calibration.py",
    expected_input_paths={'evaluation_data': '/opt/ml/processing/input/eval_data', 'model_input': '/opt/ml/processing/input/model'},
    expected_output_paths={'calibration_output': '/opt/ml/processing/output/calibration', 'calibrated_data': '/opt/ml/processing/output/calibrated_data'},
    required_env_vars=[
"LABEL_FIELD",
    ],
    optional_env_vars={'CALIBRATION_METHOD': 'isotonic'},
    expected_arguments={'job_type': 'calibration'},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Fit a probability calibrator on held-out predictions.",
)
