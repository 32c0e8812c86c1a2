"""Contract of the TabularPreprocessing script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

TABULAR_PREPROCESSING_CONTRACT = ScriptContract(
    entry_point="tabular_preprocessing.py",
    expected_input_paths={'DATA': '/opt/ml/processing/input/data'},
    expected_output_paths={'processed_data': '/opt/ml/processing/output'},
    required_env_vars=[
"LABEL_FIELD",
    ],
    optional_env_vars={'TRAIN_RATIO': '0.7', 'TEST_VAL_RATIO': '0.5', 'ID_FIELD': 'customer_id'},
    expected_arguments={'job_type': 'training'},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Clean, type and split the raw table into model-ready features.",
)
