"""The orchestrator: pipelines of stages run as a DAG with durable, resumable state.

Names load on first use, so the subprocess child (``stepkit.pipeline.child``) imports this
package without pulling in tenacity, structlog or the runner.
"""

from __future__ import annotations

from importlib import import_module

# typing.TYPE_CHECKING without importing typing (~10 ms at every start, which a
# subprocess stage pays); mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_EXPORTS: dict[str, str] = {
    "CacheHit": "stepkit.pipeline.invoke",
    "DAG": "stepkit.pipeline.dag",
    "Pipeline": "stepkit.pipeline.pipeline",
    "RetryPolicy": "stepkit.pipeline.stage",
    "RunCancelled": "stepkit.pipeline.results",
    "RunProgress": "stepkit.pipeline.settings",
    "RunResult": "stepkit.pipeline.results",
    "RunSettings": "stepkit.pipeline.settings",
    "Stage": "stepkit.pipeline.stage",
    "StageContext": "stepkit.pipeline.context",
    "StageResult": "stepkit.pipeline.results",
}

__all__ = [
    "DAG",
    "CacheHit",
    "Pipeline",
    "RetryPolicy",
    "RunCancelled",
    "RunProgress",
    "RunResult",
    "RunSettings",
    "Stage",
    "StageContext",
    "StageResult",
]

if TYPE_CHECKING:
    from stepkit.pipeline.context import StageContext
    from stepkit.pipeline.dag import DAG
    from stepkit.pipeline.invoke import CacheHit
    from stepkit.pipeline.pipeline import Pipeline
    from stepkit.pipeline.results import RunCancelled, RunResult, StageResult
    from stepkit.pipeline.settings import RunProgress, RunSettings
    from stepkit.pipeline.stage import RetryPolicy, Stage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stepkit.pipeline' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
