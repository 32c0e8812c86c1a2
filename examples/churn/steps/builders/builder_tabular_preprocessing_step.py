"""How TabularPreprocessing becomes a runnable task."""

from stepkit.components import StepBuilder


class TabularPreprocessingStepBuilder(StepBuilder):
    """Builder of TabularPreprocessing; the default task runs its script."""

