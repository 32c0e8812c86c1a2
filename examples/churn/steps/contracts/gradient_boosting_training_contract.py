"""Contract of the GradientBoostingTraining script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

GRADIENT_BOOSTING_TRAINING_CONTRACT = ScriptContract(
    entry_point="gradient_boosting_training.py",
    expected_input_paths={'input_path': '/opt/ml/input/data', 'hyperparameters_s3_uri': '/opt/ml/input/config/hyperparameters.json'},
    expected_output_paths={'model_output': '/opt/ml/model', 'evaluation_output': '/opt/ml/output/data'},
    required_env_vars=[
    ],
    optional_env_vars={'LABEL_FIELD': 'churned'},
    expected_arguments={},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Train a gradient-boosted tree classifier on the processed training data.",
)
