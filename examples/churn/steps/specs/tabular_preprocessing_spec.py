"""Specification of TabularPreprocessing: what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.tabular_preprocessing_contract import TABULAR_PREPROCESSING_CONTRACT

    return TABULAR_PREPROCESSING_CONTRACT

TABULAR_PREPROCESSING_SPEC = StepSpecification(
    step_type=get_spec_step_type("TabularPreprocessing"),
    node_type=NodeType.INTERNAL,
    script_contract=_get_contract(),
    dependencies=[
        DependencySpec(
            logical_name="DATA",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=True,
            compatible_sources=['DataLoading', 'MissingValueImputation'],
            semantic_keywords=['data', 'input', 'raw', 'dataset', 'table'],
            data_type="S3Uri",
            description="DATA for TabularPreprocessing",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="processed_data",
            aliases=['processed', 'data'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="processed data of TabularPreprocessing",
        ),
    ],
)
