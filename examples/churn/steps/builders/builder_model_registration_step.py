"""How ModelRegistration becomes a runnable task."""

from stepkit.components import StepBuilder


class ModelRegistrationStepBuilder(StepBuilder):
    """Builder of ModelRegistration; the default task runs its script."""


    def run(self, context):
        """Record the packaged model and its metrics in the model registry (runs in-process: this step has no script)."""
        from .._local_tasks import model_registration

        return model_registration(context)

