"""Parameters of MissingValueImputation, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class MissingValueImputationConfig(StepConfig):
    """Fill missing values with statistics learned on the training split."""

    processing_entry_point: str = "missing_value_imputation.py"
    job_type: str = "training"
    strategy: str = "median"
