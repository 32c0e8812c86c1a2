"""Parameters of ModelPackaging, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class ModelPackagingConfig(StepConfig):
    """Bundle model, calibrator and inference code into one deployable archive."""

    processing_entry_point: str = "model_packaging.py"
    package_name: str = "churn-model"
