"""Parameters of DataLoading, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class DataLoadingConfig(StepConfig):
    """Load (here: generate, seeded) the raw customer table for one job type."""

    processing_entry_point: str = "data_loading.py"
    job_type: str = "training"
    label_field: str = "churned"
    n_rows: int = 5000
    seed: int = 7
