"""Parameters of TabularPreprocessing, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class TabularPreprocessingConfig(StepConfig):
    """Clean, type and split the raw table into model-ready features."""

    processing_entry_point: str = "tabular_preprocessing.py"
    job_type: str = "training"
    label_field: str = "churned"
    train_ratio: float = 0.7
    test_val_ratio: float = 0.5
