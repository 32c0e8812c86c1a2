"""Contract of the DataLoading script: its paths, environment and arguments."""

from stepkit.components import ScriptContract

DATA_LOADING_CONTRACT = ScriptContract(
    entry_point="data_loading.py",
    expected_input_paths={},
    expected_output_paths={'DATA': '/opt/ml/processing/output/data', 'METADATA': '/opt/ml/processing/output/metadata'},
    required_env_vars=[
"LABEL_FIELD",
    ],
    optional_env_vars={'N_ROWS': '5000', 'SEED': '7'},
    expected_arguments={'job_type': 'training'},
    framework_requirements={"numpy": ">=1.24", "scikit-learn": ">=1.3"},
    description="Load (here: generate, seeded) the raw customer table for one job type.",
)
