"""What the catalog answers with: small frozen records, cheap to build and to print."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    from stepkit.registry.definitions import StepDefinition

COMPONENTS: Final = ("script", "contract", "spec", "config", "builder", "hyperparams")

#: Components a complete step needs, by sagemaker step type (DESIGN.md); others: custom.
REQUIRED_BY_TYPE: Final[Mapping[str, tuple[str, ...]]] = {
    "Processing": ("script", "contract", "spec", "config", "builder"),
    "Training": ("script", "contract", "spec", "config", "builder"),
    "CreateModel": ("spec", "config", "builder"),
    "RegisterModel": ("spec", "config", "builder"),
    "Transform": ("spec", "config", "builder"),
    "Base": ("config", "builder"),
    "Utility": ("config", "builder"),
}
REQUIRED_CUSTOM: Final = ("config", "builder")


def required_components(step_type: str | None) -> tuple[str, ...]:
    return REQUIRED_BY_TYPE.get(step_type or "", REQUIRED_CUSTOM)


class ComponentFile(NamedTuple):
    """One component file of a step: where, which workspace, and how it was matched.

    ``via`` is ``registry`` (the class the registry names), ``declared`` (the spec's own
    step type), ``spec`` (the contract a spec refers to), ``contract`` / ``entry_point``
    (named as entry point by a contract / a config) or ``name`` (file-name pattern).
    A named tuple: a step's five are made on every first lookup, and cheaply.
    """

    location: str  # the path as the index keeps it; ``path`` makes the Path on demand
    component: str
    workspace_id: str
    job_type: str | None = None
    via: str = "name"

    @property
    def path(self) -> Path:
        """The file (a ``Path`` is made when asked: most lookups never look at it)."""
        return Path(self.location)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.location,
            "component": self.component,
            "workspace_id": self.workspace_id,
            "job_type": self.job_type,
            "via": self.via,
        }


_UNREAD: Final[Any] = object()


class StepInfo:
    """Everything the catalog knows of one step (and job type, when asked for one).

    Read-only by contract: the catalog hands the same one to every caller (a plain slotted
    class, as building a frozen one would triple the cost of a first lookup). The registry
    ``definition`` is made when first read, from the catalog's digest row it keeps (plain
    data: a StepInfo pickles, and never sees a later state of its catalog).
    """

    __slots__ = (
        "_definition",
        "_row",
        "components",
        "job_type",
        "job_types",
        "name",
        "registered",
        "shadowed",
        "specs",
        "step_type",
        "workspace_id",
    )

    name: str
    job_type: str | None
    workspace_id: str  # the highest-precedence workspace contributing to the step
    registered: bool
    step_type: str | None  # the registry's ``sagemaker_step_type`` (None: unregistered)
    components: Mapping[str, ComponentFile]  # effective: the first in precedence order
    specs: Mapping[str | None, ComponentFile]  # job type (None: generic) → spec
    shadowed: tuple[ComponentFile, ...]  # same component in a later workspace
    job_types: tuple[str, ...]
    _row: Sequence[Any] | None  # the registry digest row (see catalog.resolution)
    _definition: Any  # a StepDefinition, None, or _UNREAD

    def __init__(
        self,
        name: str,
        job_type: str | None,
        workspace_id: str,
        *,
        step_type: str | None,
        components: Mapping[str, ComponentFile],
        specs: Mapping[str | None, ComponentFile],
        shadowed: tuple[ComponentFile, ...],
        job_types: tuple[str, ...],
        row: Sequence[Any] | None = None,
        definition: StepDefinition | None = None,
    ) -> None:
        self.name = name
        self.job_type = job_type
        self.workspace_id = workspace_id
        self.registered = step_type is not None
        self.step_type = step_type
        self.components = components
        self.specs = specs
        self.shadowed = shadowed
        self.job_types = job_types
        self._row = row
        self._definition = definition if row is None else _UNREAD

    @property
    def definition(self) -> StepDefinition | None:
        """The registry's definition (None for an unregistered step)."""
        if self._definition is _UNREAD:
            from stepkit.catalog.resolution import definition_from_row

            assert self._row is not None
            self._definition = definition_from_row(self.name, self._row)
        return self._definition  # type: ignore[no-any-return]

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__}
        state["_definition"], state["_row"] = self.definition, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _key(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.job_type,
            self.workspace_id,
            self.step_type,
            dict(self.components),
            dict(self.specs),
            self.shadowed,
            self.job_types,
            self.definition,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StepInfo) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.name, self.job_type, self.workspace_id))

    def __repr__(self) -> str:
        return (
            f"StepInfo(name={self.name!r}, job_type={self.job_type!r}, "
            f"workspace_id={self.workspace_id!r}, registered={self.registered}, "
            f"components={sorted(self.components)}, job_types={self.job_types})"
        )

    @property
    def node_name(self) -> str:
        return f"{self.name}_{self.job_type}" if self.job_type else self.name

    @property
    def required(self) -> tuple[str, ...]:
        return required_components(self.step_type)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c for c in self.required if c not in self.components)

    @property
    def is_complete(self) -> bool:
        return self.registered and not self.missing

    def path(self, component: str) -> Path | None:
        found = self.components.get(component)
        return found.path if found else None

    def as_json(self, *, with_shadowed: bool = False) -> dict[str, Any]:
        d = self.definition
        out: dict[str, Any] = {
            "name": self.name,
            "node_name": self.node_name,
            "job_type": self.job_type,
            "workspace_id": self.workspace_id,
            "registered": self.registered,
            "step_type": self.step_type,
            "description": d.description if d else "",
            "registry": ({"workspace_id": d.workspace_id, **d.as_dict()} if d else None),
            "job_types": list(self.job_types),
            "components": {c: f.as_json() for c, f in self.components.items()},
            "specs": {(j or ""): f.as_json() for j, f in self.specs.items()},
            "complete": self.is_complete,
            "missing": list(self.missing),
        }
        if with_shadowed:
            out["shadowed"] = [f.as_json() for f in self.shadowed]
        return out


@dataclass(frozen=True, slots=True)
class Problem:
    """Something ``catalog check`` reports: what, where (path and line), which step."""

    kind: str  # syntax, unreadable, unmatched, unregistered, incomplete, reference, node_type
    message: str
    path: Path | None = None
    line: int | None = None
    step: str | None = None
    workspace_id: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "path": str(self.path) if self.path else None,
            "line": self.line,
            "step": self.step,
            "workspace_id": self.workspace_id,
        }
