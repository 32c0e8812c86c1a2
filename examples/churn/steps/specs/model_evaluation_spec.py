"""Specification of ModelEvaluation: what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.model_evaluation_contract import MODEL_EVALUATION_CONTRACT

    return MODEL_EVALUATION_CONTRACT

MODEL_EVALUATION_SPEC = StepSpecification(
    step_type=get_spec_step_type("ModelEvaluation"),
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
            description="model input for ModelEvaluation",
        ),
        DependencySpec(
            logical_name="processed_data",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=True,
            compatible_sources=['TabularPreprocessing'],
            semantic_keywords=['data', 'processed', 'testing', 'evaluation'],
            data_type="S3Uri",
            description="processed data for ModelEvaluation",
        ),
        DependencySpec(
            logical_name="calibration_input",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=False,
            compatible_sources=['ModelCalibration'],
            semantic_keywords=['calibration', 'calibrator'],
            data_type="S3Uri",
            description="calibration input for ModelEvaluation",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="eval_output",
            aliases=['predictions', 'evaluation'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="eval output of ModelEvaluation",
        ),
        OutputSpec(
            logical_name="metrics_output",
            aliases=['metrics', 'report'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="metrics output of ModelEvaluation",
        ),
    ],
)
