"""Specification of DataLoading (calibration variant): what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type_with_job_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.data_loading_contract import DATA_LOADING_CONTRACT

    return DATA_LOADING_CONTRACT

DATA_LOADING_CALIBRATION_SPEC = StepSpecification(
    step_type=get_spec_step_type_with_job_type("DataLoading", "calibration"),
    node_type=NodeType.SOURCE,
    script_contract=_get_contract(),
    dependencies=[
    ],
    outputs=[
        OutputSpec(
            logical_name="DATA",
            aliases=['data', 'raw'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="DATA of DataLoading",
        ),
        OutputSpec(
            logical_name="METADATA",
            aliases=['metadata', 'schema'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="METADATA of DataLoading",
        ),
    ],
)
