"""How DataLoading becomes a runnable task."""

from stepkit.components import StepBuilder


class DataLoadingStepBuilder(StepBuilder):
    """Builder of DataLoading; the default task runs its script."""

