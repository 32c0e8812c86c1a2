"""How GradientBoostingTraining becomes a runnable task."""

from stepkit.components import StepBuilder


class GradientBoostingTrainingStepBuilder(StepBuilder):
    """Builder of GradientBoostingTraining; the default task runs its script."""

