"""Parameters of ModelRegistration, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class ModelRegistrationConfig(StepConfig):
    """Record the packaged model and its metrics in the model registry."""

    model_package_group: str = "churn-models"
    min_auc: float = 0.7
