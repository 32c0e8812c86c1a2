"""Parameters of FeatureSelection, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class FeatureSelectionConfig(StepConfig):
    """Keep the features most informative about churn (alice's experiment)."""

    processing_entry_point: str = "feature_selection.py"
    job_type: str = "training"
    label_field: str = "churned"
    max_features: int = 8
