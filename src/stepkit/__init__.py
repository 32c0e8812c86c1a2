"""stepkit: find, test, run and cache the steps of data and ML pipelines.

The public API is re-exported here and loaded on first use, so ``import stepkit`` stays
cheap: nothing heavy (pydantic, typer, rich, sqlite) is imported until it is needed.
"""

from __future__ import annotations

from importlib import import_module

from stepkit.version import __version__

# typing.TYPE_CHECKING without importing typing (~10 ms at every start, which a
# subprocess stage pays); mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "StepkitError": "stepkit.errors",
    "StepCatalog": "stepkit.catalog.catalog",
    "ArtifactStore": "stepkit.artifacts.store",
    "Project": "stepkit.project",
    "Registry": "stepkit.registry.layering",
    "StepDefinition": "stepkit.registry.definitions",
    "workspace_context": "stepkit.registry.context",
    "Pipeline": "stepkit.pipeline.pipeline",
    "RetryPolicy": "stepkit.pipeline.stage",
    "RunSettings": "stepkit.pipeline.settings",
    "RunOptions": "stepkit.plan.execute",
    "plan_dag": "stepkit.plan.execute",
    "run_dag": "stepkit.plan.execute",
    "resume_run": "stepkit.plan.execute",
    "RuntimeTester": "stepkit.testing.runner",
    "dask_executor": "stepkit.pipeline.dask_executor",
}

__all__ = [
    "ArtifactStore",
    "Pipeline",
    "Project",
    "Registry",
    "RetryPolicy",
    "RunOptions",
    "RunSettings",
    "RuntimeTester",
    "StepCatalog",
    "StepDefinition",
    "StepkitError",
    "__version__",
    "dask_executor",
    "plan_dag",
    "resume_run",
    "run_dag",
    "workspace_context",
]

if TYPE_CHECKING:
    from stepkit.artifacts.store import ArtifactStore
    from stepkit.catalog.catalog import StepCatalog
    from stepkit.errors import StepkitError
    from stepkit.pipeline.dask_executor import dask_executor
    from stepkit.pipeline.pipeline import Pipeline
    from stepkit.pipeline.settings import RunSettings
    from stepkit.pipeline.stage import RetryPolicy
    from stepkit.plan.execute import RunOptions, plan_dag, resume_run, run_dag
    from stepkit.project import Project
    from stepkit.registry.context import workspace_context
    from stepkit.registry.definitions import StepDefinition
    from stepkit.registry.layering import Registry
    from stepkit.testing.runner import RuntimeTester


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stepkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
