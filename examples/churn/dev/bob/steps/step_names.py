"""bob's workspace: he is trying a stricter evaluation, so he overrides one field."""

STEP_OVERRIDES = {
    "ModelEvaluation": {
        "description": "Score the model on test data with bootstrap confidence intervals (bob)",
    },
}
