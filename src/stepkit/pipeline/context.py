"""The immutable context a stage receives: pipeline inputs, its dependencies' outputs, and
where it may write temporary files.

Light on purpose (nothing imported at module level): the subprocess child runs it before
the stage, and every millisecond there is paid by every subprocess stage.
Folders are made on first use (``context.temp_dir()``), so a stage that writes nothing costs
no ``mkdir``; the runner removes them when the stage ends, whatever the outcome.
"""

from __future__ import annotations

# types.MappingProxyType, without importing types (see the module docstring).
MappingProxyType = type(type.__dict__)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path
    from typing import Any

_FIELDS = ("run_id", "stage", "attempt", "inputs", "upstream", "temp_path", "scratch_path")


class StageContext:
    """What one attempt of one stage sees. Read-only: a stage returns outputs, it never
    changes what it was given.

    ``upstream`` maps each dependency (by the name the stage declared it under) to its
    outputs; ``context[key]`` looks a key up in the dependencies' outputs, then the inputs.
    """

    __slots__ = _FIELDS

    run_id: str
    stage: str
    attempt: int
    inputs: Mapping[str, Any]
    upstream: Mapping[str, Mapping[str, Any]]
    temp_path: str
    scratch_path: str

    def __init__(
        self,
        *,
        run_id: str,
        stage: str,
        attempt: int,
        inputs: Mapping[str, Any],
        upstream: Mapping[str, Mapping[str, Any]],
        temp_path: str,
        scratch_path: str,
    ) -> None:
        put = object.__setattr__
        put(self, "run_id", run_id)
        put(self, "stage", stage)
        put(self, "attempt", attempt)
        put(self, "inputs", MappingProxyType(dict(inputs)))
        put(
            self,
            "upstream",
            MappingProxyType({name: MappingProxyType(dict(out)) for name, out in upstream.items()}),
        )
        put(self, "temp_path", temp_path)
        put(self, "scratch_path", scratch_path)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"StageContext is read-only (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"StageContext is read-only (cannot delete {name!r})")

    def __repr__(self) -> str:
        return f"StageContext(run_id={self.run_id!r}, stage={self.stage!r}, attempt={self.attempt})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StageContext):
            return NotImplemented
        return self.to_payload() == other.to_payload()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking mappings inside

    def temp_dir(self) -> Path:
        """This stage's temporary folder (made now if needed; removed when the stage ends)."""
        import os
        from pathlib import Path

        os.makedirs(self.temp_path, exist_ok=True)
        return Path(self.temp_path)

    def scratch_dir(self) -> Path:
        """This stage's scratch folder for large working files (removed when the stage ends)."""
        import os
        from pathlib import Path

        os.makedirs(self.scratch_path, exist_ok=True)
        return Path(self.scratch_path)

    def __getitem__(self, key: str) -> Any:
        for outputs in self.upstream.values():
            if key in outputs:
                return outputs[key]
        if key in self.inputs:
            return self.inputs[key]
        from stepkit.names import close_matches

        known = [*self.inputs, *(k for out in self.upstream.values() for k in out)]
        hints = close_matches(key, known)
        hint = f" Did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        raise KeyError(f"Stage {self.stage!r}: no input or upstream output {key!r}.{hint}")

    def __contains__(self, key: object) -> bool:
        return key in self.inputs or any(key in out for out in self.upstream.values())

    def keys(self) -> Iterator[str]:
        seen = dict.fromkeys(self.inputs)
        for outputs in self.upstream.values():
            seen.update(dict.fromkeys(outputs))
        return iter(seen)

    def to_payload(self) -> dict[str, Any]:
        """Plain values (dicts, JSON-ready) to send to another process."""
        return {
            "run_id": self.run_id,
            "stage": self.stage,
            "attempt": self.attempt,
            "inputs": dict(self.inputs),
            "upstream": {name: dict(out) for name, out in self.upstream.items()},
            "temp_path": self.temp_path,
            "scratch_path": self.scratch_path,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StageContext:
        return cls(**{name: payload[name] for name in _FIELDS})

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_payload, (self.to_payload(),))


def _from_payload(payload: Mapping[str, Any]) -> StageContext:
    return StageContext.from_payload(payload)
