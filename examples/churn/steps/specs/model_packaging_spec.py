"""Specification of ModelPackaging: what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.model_packaging_contract import MODEL_PACKAGING_CONTRACT

    return MODEL_PACKAGING_CONTRACT

MODEL_PACKAGING_SPEC = StepSpecification(
    step_type=get_spec_step_type("ModelPackaging"),
    node_type=NodeType.INTERNAL,
    script_contract=_get_contract(),
    dependencies=[
        DependencySpec(
            logical_name="model_input",
            dependency_type=DependencyType.MODEL_ARTIFACTS,
            required=True,
            compatible_sources=['GradientBoostingTraining'],
            semantic_keywords=['model', 'artifacts'],
            data_type="S3Uri",
            description="model input for ModelPackaging",
        ),
        DependencySpec(
            logical_name="calibration_input",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=False,
            compatible_sources=['ModelCalibration'],
            semantic_keywords=['calibration', 'calibrator'],
            data_type="S3Uri",
            description="calibration input for ModelPackaging",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="packaged_model",
            aliases=['package', 'model'],
            output_type=DependencyType.MODEL_ARTIFACTS,
            data_type="S3Uri",
            description="packaged model of ModelPackaging",
        ),
    ],
)
