"""How ModelCalibration becomes a runnable task."""

from stepkit.components import StepBuilder


class ModelCalibrationStepBuilder(StepBuilder):
    """Builder of ModelCalibration; the default task runs its script."""

