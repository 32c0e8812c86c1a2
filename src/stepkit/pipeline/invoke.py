"""Calling a stage and checking what it returned.

Light (standard library only at import, errors imported when raised): the subprocess
child imports it before any user code.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from stepkit.pipeline.context import StageContext

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


def call_stage(target: Any, context: StageContext) -> Any:
    """Run one attempt: validate, execute, cleanup for objects; the call for functions."""
    execute = getattr(target, "execute", None)
    if execute is None:
        return target(context)
    validate = getattr(target, "validate", None)
    if validate is not None and validate(context) is False:
        from stepkit.errors import StageValidationError

        raise StageValidationError(context.stage, "validate(context) returned False")
    try:
        return execute(context)
    finally:
        cleanup = getattr(target, "cleanup", None)
        if cleanup is not None:
            cleanup(context)


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
