"""How BatchTransform becomes a runnable task."""

from stepkit.components import StepBuilder


class BatchTransformStepBuilder(StepBuilder):
    """Builder of BatchTransform; the default task runs its script."""


    def run(self, context):
        """Score a batch of customers with the packaged model (runs in-process: this step has no script)."""
        from .._local_tasks import batch_transform

        return batch_transform(context)

