"""Specification of BatchTransform (testing variant): what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type_with_job_type

BATCH_TRANSFORM_TESTING_SPEC = StepSpecification(
    step_type=get_spec_step_type_with_job_type("BatchTransform", "testing"),
    node_type=NodeType.INTERNAL,
    dependencies=[
        DependencySpec(
            logical_name="model_input",
            dependency_type=DependencyType.MODEL_ARTIFACTS,
            required=True,
            compatible_sources=['ModelPackaging', 'GradientBoostingTraining'],
            semantic_keywords=['model', 'package'],
            data_type="S3Uri",
            description="model input for BatchTransform",
        ),
        DependencySpec(
            logical_name="processed_data",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=True,
            compatible_sources=['TabularPreprocessing'],
            semantic_keywords=['data', 'processed', 'testing'],
            data_type="S3Uri",
            description="processed data for BatchTransform",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="transform_output",
            aliases=['predictions', 'scores'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="transform output of BatchTransform",
        ),
    ],
)
