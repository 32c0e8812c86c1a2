"""Parameters of ModelEvaluation, validated when a pipeline runs it."""

from stepkit.components import StepConfig


class ModelEvaluationConfig(StepConfig):
    """Score the model on test data: metrics JSON and an ROC plot."""

    processing_entry_point: str = "model_evaluation.py"
    label_field: str = "churned"
    id_field: str = "customer_id"
