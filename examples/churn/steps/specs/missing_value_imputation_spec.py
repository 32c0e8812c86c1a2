"""Specification of MissingValueImputation: what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.missing_value_imputation_contract import MISSING_VALUE_IMPUTATION_CONTRACT

    return MISSING_VALUE_IMPUTATION_CONTRACT

MISSING_VALUE_IMPUTATION_SPEC = StepSpecification(
    step_type=get_spec_step_type("MissingValueImputation"),
    node_type=NodeType.INTERNAL,
    script_contract=_get_contract(),
    dependencies=[
        DependencySpec(
            logical_name="DATA",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=True,
            compatible_sources=['DataLoading'],
            semantic_keywords=['data', 'raw', 'input'],
            data_type="S3Uri",
            description="DATA for MissingValueImputation",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="DATA",
            aliases=['data', 'imputed'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="DATA of MissingValueImputation",
        ),
    ],
)
