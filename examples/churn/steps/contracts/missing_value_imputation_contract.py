"""Contract of the MissingValueImputation script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

MISSING_VALUE_IMPUTATION_CONTRACT = ScriptContract(
    entry_point="missing_value_imputation.py",
    expected_input_paths={'DATA': '/opt/ml/processing/input/data'},
    expected_output_paths={'DATA': '/opt/ml/processing/output/data'},
    required_env_vars=[
    ],
    optional_env_vars={'STRATEGY': 'median'},
    expected_arguments={'job_type': 'training'},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Fill missing values with statistics learned on the training split.",
)
