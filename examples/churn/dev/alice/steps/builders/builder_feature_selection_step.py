"""How FeatureSelection becomes a runnable task."""

from stepkit.components import StepBuilder


class FeatureSelectionStepBuilder(StepBuilder):
    """Builder of FeatureSelection; the default task runs its script."""

