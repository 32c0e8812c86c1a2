"""How MissingValueImputation becomes a runnable task."""

from stepkit.components import StepBuilder


class MissingValueImputationStepBuilder(StepBuilder):
    """Builder of MissingValueImputation; the default task runs its script."""

