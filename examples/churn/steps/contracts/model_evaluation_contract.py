"""Contract of the ModelEvaluation script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

MODEL_EVALUATION_CONTRACT = ScriptContract(
    entry_point="model_evaluation.py",
    expected_input_paths={'model_input': '/opt/ml/processing/input/model', 'processed_data': '/opt/ml/processing/input/eval_data', 'calibration_input': '/opt/ml/processing/input/calibration'},
    expected_output_paths={'eval_output': '/opt/ml/processing/output/eval', 'metrics_output': '/opt/ml/processing/output/metrics'},
    required_env_vars=[
"LABEL_FIELD",
    ],
    optional_env_vars={'ID_FIELD': 'customer_id'},
    expected_arguments={'job_type': 'testing'},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Score the model on test data: metrics JSON and an ROC plot.",
)
