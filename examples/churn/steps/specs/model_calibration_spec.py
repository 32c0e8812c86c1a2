"""Specification of ModelCalibration: what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.model_calibration_contract import MODEL_CALIBRATION_CONTRACT

    return MODEL_CALIBRATION_CONTRACT

MODEL_CALIBRATION_SPEC = StepSpecification(
    step_type=get_spec_step_type("ModelCalibration"),
    node_type=NodeType.INTERNAL,
    script_contract=_get_contract(),
    dependencies=[
        DependencySpec(
            logical_name="evaluation_data",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=True,
            compatible_sources=['TabularPreprocessing'],
            semantic_keywords=['calibration', 'data', 'processed'],
            data_type="S3Uri",
            description="evaluation data for ModelCalibration",
        ),
        DependencySpec(
            logical_name="model_input",
            dependency_type=DependencyType.MODEL_ARTIFACTS,
            required=True,
            compatible_sources=['GradientBoostingTraining'],
            semantic_keywords=['model', 'artifacts'],
            data_type="S3Uri",
            description="model input for ModelCalibration",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="calibration_output",
            aliases=['calibration', 'calibrator'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="calibration output of ModelCalibration",
        ),
        OutputSpec(
            logical_name="calibrated_data",
            aliases=['calibrated', 'predictions'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="calibrated data of ModelCalibration",
        ),
    ],
)
