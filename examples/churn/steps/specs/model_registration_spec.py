"""Specification of ModelRegistration: what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type

MODEL_REGISTRATION_SPEC = StepSpecification(
    step_type=get_spec_step_type("ModelRegistration"),
    node_type=NodeType.INTERNAL,
    dependencies=[
        DependencySpec(
            logical_name="packaged_model",
            dependency_type=DependencyType.MODEL_ARTIFACTS,
            required=True,
            compatible_sources=['ModelPackaging'],
            semantic_keywords=['package', 'model'],
            data_type="S3Uri",
            description="packaged model for ModelRegistration",
        ),
        DependencySpec(
            logical_name="metrics_input",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=False,
            compatible_sources=['ModelEvaluation'],
            semantic_keywords=['metrics', 'report', 'evaluation'],
            data_type="S3Uri",
            description="metrics input for ModelRegistration",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="registration",
            aliases=['record'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="registration of ModelRegistration",
        ),
    ],
)
