"""Parameters of BatchTransform, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class BatchTransformConfig(StepConfig):
    """Score a batch of customers with the packaged model."""

    job_type: str = "training"
