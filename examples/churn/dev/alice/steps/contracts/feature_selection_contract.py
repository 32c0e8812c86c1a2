"""Contract of the FeatureSelection script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

FEATURE_SELECTION_CONTRACT = ScriptContract(
    entry_point="feature_selection.py",
    expected_input_paths={'input_data': '/opt/ml/processing/input/data'},
    expected_output_paths={'selected_data': '/opt/ml/processing/output'},
    required_env_vars=[
"LABEL_FIELD",
    ],
    optional_env_vars={'MAX_FEATURES': '8'},
    expected_arguments={'job_type': 'training'},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Keep the features most informative about churn (alice's experiment).",
)
