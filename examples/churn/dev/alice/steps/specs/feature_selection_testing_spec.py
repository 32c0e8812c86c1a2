"""Specification of FeatureSelection (testing variant): what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type_with_job_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.feature_selection_contract import FEATURE_SELECTION_CONTRACT

    return FEATURE_SELECTION_CONTRACT

FEATURE_SELECTION_TESTING_SPEC = StepSpecification(
    step_type=get_spec_step_type_with_job_type("FeatureSelection", "testing"),
    node_type=NodeType.INTERNAL,
    script_contract=_get_contract(),
    dependencies=[
        DependencySpec(
            logical_name="input_data",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=True,
            compatible_sources=['TabularPreprocessing'],
            semantic_keywords=['data', 'processed', 'features'],
            data_type="S3Uri",
            description="input data for FeatureSelection",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="selected_data",
            aliases=['data', 'processed'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="selected data of FeatureSelection",
        ),
    ],
)
