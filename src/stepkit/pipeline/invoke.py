"""Calling a stage and checking what it returned.

Light (standard library only at import, errors imported when raised): the subprocess
child runs it before any user code, as the handler of a ``stage`` request of the child
protocol (:mod:`stepkit.child`, installed before it, as :mod:`stepkit.pipeline.context` is).
"""

from __future__ import annotations

import sys
import time

from stepkit.child import describe
from stepkit.pipeline.context import StageContext

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_SCALARS = (str, int, float, bool)


class CacheHit:
    """Return this from a stage whose outputs were found, not made: recorded as ``cached``."""

    __slots__ = ("outputs",)
    outputs: dict[str, Any]

    def __init__(self, outputs: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "outputs", dict(outputs or {}))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CacheHit is read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CacheHit) and other.outputs == self.outputs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CacheHit({self.outputs!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CacheHit, (self.outputs,))


def call_stage(target: Any, context: StageContext, *, whole: bool = True) -> Any:
    """Run one attempt: for objects lookup (a hit ends it), validate, execute, cleanup,
    then finish and keep; the call for functions. ``whole=False``: validate, execute and
    cleanup only, the rest being the caller's (the runner's side of a subprocess stage)."""
    execute = getattr(target, "execute", None)
    if execute is None:
        return target(context)
    if whole:
        found = lookup_stage(target, context)
        if found is not None:
            return found
    validate = getattr(target, "validate", None)
    if validate is not None and validate(context) is False:
        from stepkit.errors import StageValidationError

        raise StageValidationError(context.stage, "validate(context) returned False")
    try:
        value = execute(context)
    finally:
        cleanup = getattr(target, "cleanup", None)
        if cleanup is not None:
            cleanup(context)
    if not whole:
        return value
    outputs = finish_stage(target, context, value)
    keep_stage(target, context, value, outputs)
    return outputs


def lookup_stage(target: Any, context: StageContext) -> CacheHit | None:
    """The object's ``lookup(context)``, when it has one: its outputs found, not made (a
    step node's cache hit), or None. For a subprocess stage the runner asks, before it
    starts the stage's child."""
    lookup = getattr(target, "lookup", None)
    if lookup is None:
        return None
    found = lookup(context)
    if found is not None and not isinstance(found, CacheHit):
        from stepkit.errors import StageOutputError

        raise StageOutputError(
            context.stage, f"lookup must return a CacheHit or None, not {type(found).__name__}"
        )
    return found


def finish_stage(target: Any, context: StageContext, value: Any) -> Any:
    """The object's ``finish(context, value)``, when it has one and ``value`` is no cache
    hit: its outputs from what ``execute`` returned. For a subprocess stage it runs in the
    runner's process once the child has reported (see ``pipeline.stage``)."""
    finish = getattr(target, "finish", None)
    if finish is None or isinstance(value, CacheHit):
        return value
    return finish(context, value)


def keep_stage(target: Any, context: StageContext, made: Any, outputs: Any) -> None:
    """The object's ``keep(context, made, outputs)``, when it has one and ``made`` is no
    cache hit: what it remembers for later runs of what :func:`finish_stage` stored."""
    keep = getattr(target, "keep", None)
    if keep is not None and not isinstance(made, CacheHit):
        keep(context, made, outputs)


def normalize_outputs(stage: str, value: Any) -> tuple[dict[str, Any], bool]:
    """A stage's return value as (JSON-ready outputs, cached?); a clear error otherwise."""
    cached = isinstance(value, CacheHit)
    if cached:
        value = value.outputs
    if value is None:
        return {}, cached
    from collections.abc import Mapping

    from stepkit.errors import StageOutputError

    if not isinstance(value, Mapping):
        raise StageOutputError(
            stage, f"must return a mapping of outputs (or None), not {type(value).__name__}"
        )
    outputs = dict(value)
    for key, item in outputs.items():
        if not isinstance(key, str):
            raise StageOutputError(stage, "output names must be strings", key=repr(key))
        if item is None or isinstance(item, _SCALARS):
            continue
        import json

        try:
            json.dumps(item)
        except (TypeError, ValueError) as exc:
            raise StageOutputError(
                stage, f"{type(item).__name__} is not JSON-serializable ({exc})", key=key
            ) from exc
    return outputs, cached


def jsonable(value: Any) -> Any:
    """``value`` if it is JSON, else its ``repr`` (what a step returned is only reported)."""
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def run_in_worker(
    target: Any, context_payload: dict[str, Any], *, whole: bool = True
) -> dict[str, Any]:
    """Run one attempt of a stage here; its outcome as plain values (``error`` is the
    exception itself). A distributed worker calls this directly; a subprocess stage's child
    with ``whole=False`` (the runner looks up, finishes and keeps)."""
    started = time.time()
    cpu = time.process_time()
    report: dict[str, Any] = {"started_at": started, "ok": True, "phase": "run"}
    try:
        value = call_stage(target, StageContext.from_payload(context_payload), whole=whole)
    except Exception as exc:  # the stage's failure is data to report, not ours to handle
        report.update(ok=False, error=exc, **describe(exc))
    else:
        report["phase"] = "done"
        report["cached"] = isinstance(value, CacheHit)
        if isinstance(value, CacheHit):
            value = value.outputs
        if value is not None and not isinstance(value, dict) and hasattr(value, "keys"):
            value = dict(value)
        report["value"] = value
    report["finished_at"] = time.time()
    report["cpu_time"] = time.process_time() - cpu
    return report


#: The name the parent's code runs as; a stage defined there is looked up as multiprocessing's
#: spawn does, in the parent's script loaded without its ``__main__`` block.
_MP_MAIN = "__mp_main__"


def _resolve(target: dict[str, Any]) -> Any:
    if "pickled" in target:
        import pickle

        return pickle.loads(target["pickled"])
    module_name: str = target["module"]
    if module_name == "__main__" and target.get("main_file"):
        import runpy

        module = type(sys)(_MP_MAIN)
        module.__dict__.update(runpy.run_path(target["main_file"], run_name=_MP_MAIN))
        sys.modules["__main__"] = sys.modules[_MP_MAIN] = module
    else:
        __import__(module_name)
    found = sys.modules[module_name]
    for part in target["qualname"].split("."):
        found = getattr(found, part)
    return found


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """The child protocol's handler of a ``stage`` request: load the stage, run it once."""
    try:
        target = _resolve(request["target"])
    except Exception as exc:  # the stage cannot even be loaded: report it like a failure
        info = describe(exc)
        info["message"] = "cannot load the stage in the child process: " + info["message"]
        report = {"ok": False, "phase": "load", "started_at": time.time(), **info}
        report["finished_at"] = report["started_at"]
    else:
        # the object's lookup, finish and keep (a step node's cache and store) are the
        # runner's to run: it has the modules loaded already, and this process ends sooner
        report = run_in_worker(target, request["context"], whole=False)
    report["stage"] = request["context"]["stage"]
    return report
