"""What the catalog answers with: small frozen records, cheap to build and to print."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from stepkit.errors import UnknownStepError
from stepkit.registry.definitions import KNOWN_STEP_TYPES

if TYPE_CHECKING:
    from stepkit.registry.definitions import StepDefinition

#: Components of a step, in the order lookups and listings show them.
COMPONENTS: Final = ("script", "contract", "spec", "config", "builder", "hyperparams")
#: A resolved step: component → its files, in workspace precedence order.
Parts = Mapping[str, tuple["ComponentFile", ...]]
#: Components variants share (they differ only in spec).
SHARED_COMPONENTS: Final = ("script", "contract", "config", "builder", "hyperparams")

#: Components a complete step needs, by sagemaker step type (DESIGN.md); others: custom.
_SCRIPTED, _MODEL, REQUIRED_CUSTOM = COMPONENTS[:5], COMPONENTS[2:5], COMPONENTS[3:5]
REQUIRED_BY_TYPE: Final[Mapping[str, tuple[str, ...]]] = {
    **dict.fromkeys(("Processing", "Training"), _SCRIPTED),
    **dict.fromkeys(("CreateModel", "RegisterModel", "Transform"), _MODEL),
    **dict.fromkeys(("Base", "Utility"), REQUIRED_CUSTOM),
}


def required_components(step_type: str | None, *, interface: bool = False) -> tuple[str, ...]:
    """What a complete step of this type needs; in the interface layout no builder (the
    framework makes it from the interface) and the interface's contract and spec."""
    required = REQUIRED_BY_TYPE.get(step_type or "", REQUIRED_CUSTOM)
    if not interface:
        return required
    scripted = ("script",) if "script" in required else ()
    return (*scripted, "contract", "spec", "config")


def is_abstract(definition: StepDefinition | None, *, has_files: bool) -> bool:
    """A registry row no file is meant to have: ``Base``, or one named for a step type
    (``Processing``), with no component files — never an incomplete step."""
    if definition is None or has_files:
        return False
    return definition.sagemaker_step_type == "Base" or definition.name in KNOWN_STEP_TYPES


class ComponentFile(NamedTuple):
    """One component file of a step: where, which workspace, and how it was matched.

    ``via`` is ``registry`` (the class the registry names), ``interface`` (a contract or
    spec an interface file declares), ``declared`` (the spec's own step type), ``spec``
    (the contract a spec refers to), ``contract`` / ``entry_point`` (named as entry point
    by a contract or interface / a config) or ``name`` (file-name pattern).
    """

    location: str  # the path as the index keeps it; ``path`` makes the Path on demand
    component: str
    workspace_id: str
    job_type: str | None = None
    via: str = "name"
    broken: str | None = None  # ``path:line: why`` when nothing of the file could be read

    @property
    def path(self) -> Path:
        return Path(self.location)

    def as_json(self) -> dict[str, Any]:
        data = self._asdict()
        if data["broken"] is None:
            del data["broken"]
        return {"path": data.pop("location"), **data}


@dataclass(frozen=True, slots=True)
class StepInfo:
    """Everything the catalog knows of one step (and job type, when asked for one)."""

    name: str
    job_type: str | None
    workspace_id: str  # the highest-precedence workspace contributing to the step
    components: Mapping[str, ComponentFile]  # effective: the first in precedence order
    specs: Mapping[str | None, ComponentFile]  # job type (None: generic) → spec
    shadowed: tuple[ComponentFile, ...]  # same component in a later workspace
    job_types: tuple[str, ...]
    definition: StepDefinition | None  # the registry's (None: unregistered)

    @classmethod
    def of(
        cls, name: str, parts: Parts, definition: StepDefinition | None, rank: Mapping[str, int]
    ) -> StepInfo:
        """A step from its placements (each component in precedence order) and its registry
        definition: the first of each component is in effect (of specs, the first of each
        job type), the rest are shadowed; ``rank``: workspace id → its place in order."""
        components: dict[str, ComponentFile] = {}
        specs: dict[str | None, ComponentFile] = {}
        shadowed: list[ComponentFile] = []
        for component, entries in parts.items():
            if component != "spec":
                components[component] = entries[0]
                shadowed += entries[1:]
                continue
            for entry in entries:
                if entry.job_type in specs:
                    shadowed.append(entry)
                else:
                    specs[entry.job_type] = entry
        contributing = [e.workspace_id for e in (*components.values(), *specs.values())]
        if definition is not None:
            contributing.append(definition.workspace_id)
        workspace = min(contributing, key=lambda ws: rank.get(ws, len(rank)), default="")
        spec = specs.get(None) or next(iter(specs.values()), None)
        if spec is not None:
            components["spec"] = spec
        job_types = {job for job in specs if job}
        job_types.update(definition.job_types if definition else ())
        return cls(
            name=name,
            job_type=None,
            workspace_id=workspace,
            components=components,
            specs=specs,
            shadowed=tuple(shadowed),
            job_types=tuple(sorted(job_types)),
            definition=definition,
        )

    @property
    def registered(self) -> bool:
        return self.definition is not None

    @property
    def step_type(self) -> str | None:
        """The registry's ``sagemaker_step_type`` (None: unregistered)."""
        return self.definition.sagemaker_step_type if self.definition else None

    @property
    def node_name(self) -> str:
        return f"{self.name}_{self.job_type}" if self.job_type else self.name

    @property
    def layout(self) -> str:
        """``interface`` when the contract or spec in effect is an interface file's."""
        contract, spec = self.components.get("contract"), self.components.get("spec")
        return (
            "interface"
            if "interface" in (contract and contract.via, spec and spec.via)
            else "classic"
        )

    @property
    def abstract(self) -> bool:
        return is_abstract(self.definition, has_files=bool(self.components or self.specs))

    @property
    def required(self) -> tuple[str, ...]:
        return required_components(self.step_type, interface=self.layout == "interface")

    @property
    def missing(self) -> tuple[str, ...]:
        if self.abstract:
            return ()
        return tuple(c for c in self.required if c not in self.components)

    @property
    def broken(self) -> dict[str, str]:
        """Components in effect whose file could not be read: component → ``path:line: why``."""
        return {c: f.broken for c, f in self.components.items() if f.broken}

    @property
    def is_complete(self) -> bool:
        return self.registered and not self.missing and not self.broken

    def path(self, component: str) -> Path | None:
        found = self.components.get(component)
        return found.path if found else None

    def variant(self, job_type: str) -> StepInfo:
        """The step as its ``job_type`` node runs it: that job type's spec in effect (else
        the generic one). Job types match however they are cased (a node ``X_Training``
        is ``X_training``).

        Raises:
            UnknownStepError: the step has no such job type, naming the ones it has.
        """
        if job_type not in self.job_types:
            same = [j for j in self.job_types if j.casefold() == job_type.casefold()]
            if not same:
                variants = [f"{self.name}_{j}" for j in self.job_types]
                raise UnknownStepError(f"{self.name}_{job_type}", variants, what="job-type variant")
            job_type = same[0]
        components = dict(self.components)
        spec = self.specs.get(job_type) or self.specs.get(None)
        if spec is not None:
            components["spec"] = spec
        else:
            components.pop("spec", None)
        return replace(self, job_type=job_type, components=components)

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
            "broken": self.broken,
            "layout": self.layout,
        }
        if with_shadowed:
            out["shadowed"] = [f.as_json() for f in self.shadowed]
        return out


@dataclass(frozen=True, slots=True)
class ListRow:
    """One step as ``catalog list`` shows it; ``text`` is its JSON as the index keeps it
    (``name``, ``workspace_id``, ``registered``, ``step_type``, ``job_types``,
    ``components``: component → workspace, ``complete``, ``missing``, ``broken``)."""

    name: str
    step_type: str | None
    workspace_id: str
    text: str

    def as_json(self) -> dict[str, Any]:
        return json.loads(self.text)  # type: ignore[no-any-return]


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
        return {**asdict(self), "path": str(self.path) if self.path else None}


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one refresh did: files parsed (new or changed), reused, removed; warnings."""

    parsed: int = 0
    reused: int = 0
    removed: int = 0
    resolved_again: bool = False
    warnings: tuple[str, ...] = ()
    saved: bool = False
