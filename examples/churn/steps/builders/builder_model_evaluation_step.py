"""How ModelEvaluation becomes a runnable task."""

from stepkit.components import StepBuilder


class ModelEvaluationStepBuilder(StepBuilder):
    """Builder of ModelEvaluation; the default task runs its script."""

