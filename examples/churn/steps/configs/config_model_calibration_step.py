"""Parameters of ModelCalibration, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class ModelCalibrationConfig(StepConfig):
    """Fit a probability calibrator on held-out predictions."""

    processing_entry_point: str = "model_calibration.py"
    label_field: str = "churned"
    calibration_method: str = "isotonic"
