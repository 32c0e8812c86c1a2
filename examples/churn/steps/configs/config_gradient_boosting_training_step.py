"""Parameters of GradientBoostingTraining, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class GradientBoostingTrainingConfig(StepConfig):
    """Train a gradient-boosted tree classifier on the processed training data."""

    training_entry_point: str = "gradient_boosting_training.py"
    label_field: str = "churned"
