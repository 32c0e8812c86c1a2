"""How ModelPackaging becomes a runnable task."""

from stepkit.components import StepBuilder


class ModelPackagingStepBuilder(StepBuilder):
    """Builder of ModelPackaging; the default task runs its script."""

