"""Specification of GradientBoostingTraining: what it needs and what it makes."""

from stepkit.components import DependencySpec, DependencyType, NodeType, OutputSpec, StepSpecification
from stepkit.registry.step_names import get_spec_step_type


def _get_contract():  # imported lazily, as the framework's specs do
    from ..contracts.gradient_boosting_training_contract import GRADIENT_BOOSTING_TRAINING_CONTRACT

    return GRADIENT_BOOSTING_TRAINING_CONTRACT

GRADIENT_BOOSTING_TRAINING_SPEC = StepSpecification(
    step_type=get_spec_step_type("GradientBoostingTraining"),
    node_type=NodeType.INTERNAL,
    script_contract=_get_contract(),
    dependencies=[
        DependencySpec(
            logical_name="input_path",
            dependency_type=DependencyType.PROCESSING_OUTPUT,
            required=True,
            compatible_sources=['TabularPreprocessing', 'MissingValueImputation'],
            semantic_keywords=['data', 'processed', 'training', 'features'],
            data_type="S3Uri",
            description="input path for GradientBoostingTraining",
        ),
        DependencySpec(
            logical_name="hyperparameters_s3_uri",
            dependency_type=DependencyType.HYPERPARAMETERS,
            required=False,
            compatible_sources=['HyperparameterPrep'],
            semantic_keywords=['hyperparameters', 'config', 'params'],
            data_type="S3Uri",
            description="hyperparameters s3 uri for GradientBoostingTraining",
        ),
    ],
    outputs=[
        OutputSpec(
            logical_name="model_output",
            aliases=['model', 'artifacts'],
            output_type=DependencyType.MODEL_ARTIFACTS,
            data_type="S3Uri",
            description="model output of GradientBoostingTraining",
        ),
        OutputSpec(
            logical_name="evaluation_output",
            aliases=['predictions', 'evaluation'],
            output_type=DependencyType.PROCESSING_OUTPUT,
            data_type="S3Uri",
            description="evaluation output of GradientBoostingTraining",
        ),
    ],
)
