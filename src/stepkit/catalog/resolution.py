"""Which step each component file belongs to: the registry first, file names last.

- config / builder: the file that defines the registry's ``config_class`` /
  ``builder_step_name``;
- spec: the step its declared step type names (``get_spec_step_type("X")``, a literal
  ``"X_Training"``), with the job type taken from the declaration;
- contract: the step whose spec refers to it, else whose config's entry point is its
  entry point; script: the step whose contract (else config) names it as entry point;
- file-name patterns only where all of that says nothing.

A name that only file names suggest becomes an *unregistered* step when something
vouches for it (a declared spec type, a ``<Name>Config`` / ``<Name>StepBuilder`` class, a
contract a spec refers to, or two components agreeing); otherwise the file is reported as
matching no step. The result is plain data (dicts, lists, strings) so the index stores it.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.catalog.records import COMPONENTS
from stepkit.names import (
    STANDARD_JOB_TYPES,
    component_stem,
    expand_abbreviations,
    pascal_to_snake,
    snake_to_pascal,
    strip_job_type,
)

if TYPE_CHECKING:
    from stepkit.registry.definitions import StepDefinition

__all__ = ["FileEntry", "RegistryFacts", "resolve"]

_EMPTY: Final[Mapping[str, Any]] = {}
#: Order in which components are resolved: later ones lean on earlier ones.
ORDER: Final = ("config", "builder", "spec", "hyperparams", "contract", "script")
_CLASS_SUFFIX: Final = {
    "config": "Config",
    "builder": "StepBuilder",
    "hyperparams": "Hyperparameters",
}


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One indexed file: where it is, which workspace and component folder, its summary.

    The summary stays encoded (``marshal``, a few hundred bytes) until resolution reads
    it: 50,000 decoded summaries would be most of a cold start's memory.
    """

    path: str
    workspace_id: str
    component: str
    summary: bytes | None  # marshal of discovery.summarize() (None: not parsed)

    @property
    def facts(self) -> Mapping[str, Any]:
        """The decoded summary (empty when the file is not parsed)."""
        return marshal.loads(self.summary) if self.summary else _EMPTY

    @property
    def stem(self) -> str:
        name = self.path.rsplit("/", 1)[-1]
        return name[:-3] if name.endswith(".py") else name


@lru_cache(maxsize=64)
def _registry_path(location: str) -> Path:
    """One ``Path`` per registry file (making one costs more than the rest of a definition)."""
    return Path(location)


#: A resolved step: component → ((path, workspace, job type, how it was matched), …).
Parts = Mapping[str, Sequence[Sequence[Any]]]

# Positions in a registry digest row (a plain tuple, so the index can store it); the
# last three are where the definition was written (file, line) and what overrides changed.
CONFIG_CLASS, BUILDER, SPEC_TYPE, STEP_TYPE, DESCRIPTION, JOB_TYPES, WORKSPACE = range(7)
ORIGIN_PATH, ORIGIN_LINE, OVERRIDDEN = range(7, 10)


def definition_from_row(name: str, row: Sequence[Any]) -> StepDefinition:
    """The registry definition a digest row was made from (see :meth:`RegistryFacts.build`)."""
    from stepkit.registry.definitions import Origin, StepDefinition

    origin = (
        Origin(row[WORKSPACE], _registry_path(row[ORIGIN_PATH]), row[ORIGIN_LINE])
        if row[ORIGIN_PATH] is not None
        else None
    )
    return StepDefinition(
        name=name,
        config_class=row[CONFIG_CLASS],
        builder_step_name=row[BUILDER],
        spec_type=row[SPEC_TYPE],
        sagemaker_step_type=row[STEP_TYPE],
        description=row[DESCRIPTION],
        job_types=tuple(row[JOB_TYPES]),
        workspace_id=row[WORKSPACE],
        origin=origin,
        overridden_fields=tuple(row[OVERRIDDEN]),
    )


@dataclass(frozen=True, slots=True)
class RegistryFacts:
    """What the catalog needs of the registry, as plain rows the index can keep.

    ``definitions``: name → (config_class, builder_step_name, spec_type,
    sagemaker_step_type, description, job_types, workspace_id, origin path, origin line,
    overridden fields).
    """

    definitions: Mapping[str, Sequence[Any]]
    job_types: tuple[str, ...]

    @classmethod
    def build(cls, views: Sequence[tuple[str, Mapping[str, StepDefinition]]]) -> RegistryFacts:
        """``views``: (workspace id, its view) in precedence order, the core last. A step's
        definition comes from the first workspace whose own layer defines or overrides it."""
        chosen: dict[str, StepDefinition] = {}
        for workspace_id, view in views:
            for name, definition in view.items():
                if definition.workspace_id == workspace_id:
                    chosen.setdefault(name, definition)
        for _, view in views[-1:]:
            for name, definition in view.items():
                chosen.setdefault(name, definition)
        rows = {  # tuples: the garbage collector stops tracking them (see _frozen)
            name: (
                d.config_class,
                d.builder_step_name,
                d.spec_type,
                d.sagemaker_step_type,
                d.description,
                tuple(d.job_types),
                d.workspace_id,
                str(d.origin.path) if d.origin else None,
                d.origin.line if d.origin else None,
                tuple(d.overridden_fields),
            )
            for name, d in chosen.items()
        }
        return cls.from_rows(rows)

    @classmethod
    def from_rows(cls, rows: Mapping[str, Sequence[Any]]) -> RegistryFacts:
        custom = sorted({jt for row in rows.values() for jt in row[JOB_TYPES]})
        job_types = (*STANDARD_JOB_TYPES, *[j for j in custom if j not in STANDARD_JOB_TYPES])
        return cls(rows, job_types)


class _Resolver:
    def __init__(
        self,
        registry: RegistryFacts,
        workspace_order: Sequence[str],
        by_stem: Mapping[str, str] | None = None,
    ) -> None:
        self.registry = registry
        self.rank = {ws: i for i, ws in enumerate(workspace_order)}
        defs = registry.definitions
        self.known = set(defs)
        self.by_stem = by_stem if by_stem is not None else registry_stems(registry)
        self.by_config: dict[str, list[str]] = {}
        self.by_builder: dict[str, list[str]] = {}
        self.by_spec_type: dict[str, str] = {}
        for name, row in sorted(defs.items()):
            self.by_config.setdefault(row[CONFIG_CLASS], []).append(name)
            self.by_builder.setdefault(row[BUILDER], []).append(name)
            self.by_spec_type.setdefault(row[SPEC_TYPE], name)
        self._reset()

    def fresh(self) -> _Resolver:
        """A resolver with nothing resolved yet, sharing this one's registry tables."""
        clone = object.__new__(_Resolver)
        clone.registry, clone.rank, clone.known = self.registry, self.rank, self.known
        clone.by_stem, clone.by_config = self.by_stem, self.by_config
        clone.by_builder, clone.by_spec_type = self.by_builder, self.by_spec_type
        clone._reset()
        return clone

    def _reset(self) -> None:
        self.steps: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
        self.evidence: set[str] = set()  # unregistered names something vouches for
        self.tentative: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
        self.problems: list[list[Any]] = []
        self.unmatched: list[list[Any]] = []
        self.entry_points: dict[str, list[str]] = {}  # script stem → steps (configs)
        self.contract_refs: dict[tuple[str, str], list[str]] = {}  # (stem, var) → steps
        self.contract_scripts: dict[str, list[str]] = {}  # script stem → steps (contracts)

    # -- bookkeeping -------------------------------------------------------------------------

    def assign(self, name: str, component: str, entry: tuple[Any, ...]) -> None:
        if name in self.known or name in self.evidence:
            parts = self.steps.get(name)  # get, not setdefault: no new dict and list per call
            if parts is None:
                self.steps[name] = {component: [entry]}
            elif (found := parts.get(component)) is None:
                parts[component] = [entry]
            else:
                found.append(entry)
        else:
            self.tentative.setdefault(name, []).append((component, entry))

    def vouch(self, name: str) -> None:
        if name not in self.known:
            self.evidence.add(name)

    def by_file_name(self, stem: str, component: str) -> tuple[str, str | None]:
        """The fallback: (step name, job type) a component file's name suggests."""
        base = component_stem(stem, component)
        job_types = self.registry.job_types
        candidates: list[tuple[str, str | None]] = [(base, None)]
        if component == "spec":
            stripped, job = strip_job_type(base, job_types)
            if job:
                candidates.append((stripped, job))
        for candidate, job in list(candidates):
            expanded = expand_abbreviations(candidate)
            if expanded != candidate:
                candidates.append((expanded, job))
        for candidate, job in candidates:
            found = self.by_stem.get(candidate)
            if found is not None:
                return found, job
        candidate, job = (
            candidates[1] if len(candidates) > 1 and candidates[1][1] else candidates[0]
        )
        return snake_to_pascal(candidate), job

    # -- components --------------------------------------------------------------------------

    def classes(self, f: FileEntry, facts: Mapping[str, Any]) -> None:
        owners = self.by_config if f.component == "config" else self.by_builder
        matched = False
        classes = facts.get("classes", ())
        for class_name, _has_run, entry_points in classes:
            for name in owners.get(class_name, ()) if f.component != "hyperparams" else ():
                self.assign(name, f.component, (f.path, f.workspace_id, None, "registry"))
                matched = True
                self.note_entry_points(name, entry_points)
        if matched:
            return
        name, _ = self.by_file_name(f.stem, f.component)
        suffix = _CLASS_SUFFIX[f.component]
        for class_name, _has_run, entry_points in classes:
            if class_name == f"{name}{suffix}":
                self.vouch(name)
            if f.component == "config":
                self.note_entry_points(name, entry_points)
        self.assign(name, f.component, (f.path, f.workspace_id, None, "name"))

    def note_entry_points(self, name: str, entry_points: Iterable[str]) -> None:
        for entry in entry_points:
            self.entry_points.setdefault(entry.removesuffix(".py"), []).append(name)

    def spec_targets(
        self, f: FileEntry, facts: Mapping[str, Any]
    ) -> list[tuple[str, str | None, str, tuple[str, str] | None]]:
        """(step, job type, via, (contract stem, variable) it refers to) per declared spec;
        what a spec file says depends on the registry and the file only."""
        out: list[tuple[str, str | None, str, tuple[str, str] | None]] = []
        for s in facts.get("specs") or ():
            name, job, literal, ref = s[2], s[3], s[4], s[5]
            if name is None and literal:
                base, _, suffix = literal.partition("_")
                name = self.by_spec_type.get(base, base)
                job = suffix.lower() or None
            via = "declared"
            if name is None:
                name, job = self.by_file_name(f.stem, "spec")
                via = "name"
            target = None
            if ref:
                target = (ref[0].rsplit(".", 1)[-1] if ref[0] else f.stem, ref[1])
            out.append((name, job, via, target))
        if not out:
            name, job = self.by_file_name(f.stem, "spec")
            out.append((name, job, "name", None))
        return out

    def spec(self, f: FileEntry, facts: Mapping[str, Any]) -> None:
        for name, job, via, target in self.spec_targets(f, facts):
            if via == "declared":
                self.vouch(name)
            self.assign(name, "spec", (f.path, f.workspace_id, job, via))
            if target is not None:
                self.contract_refs.setdefault(target, []).append(name)

    def contract(self, f: FileEntry, facts: Mapping[str, Any]) -> None:
        owners: list[str] = []
        via = "spec"
        contracts = facts.get("contracts", ())
        for var, _line, _entry in contracts:
            owners += self.contract_refs.get((f.stem, var), [])
        if not owners:
            via = "entry_point"
            for _var, _line, entry in contracts:
                if isinstance(entry, str):
                    owners += self.entry_points.get(entry.removesuffix(".py"), [])
        if not owners:
            name, _ = self.by_file_name(f.stem, "contract")
            owners, via = [name], "name"
        for name in dict.fromkeys(owners):
            if via == "spec":
                self.vouch(name)
            self.assign(name, "contract", (f.path, f.workspace_id, None, via))
            for _var, _line, entry in contracts:
                if isinstance(entry, str):
                    self.contract_scripts.setdefault(entry.removesuffix(".py"), []).append(name)

    def script(self, f: FileEntry, facts: Mapping[str, Any]) -> None:
        owners, via = self.contract_scripts.get(f.stem, []), "contract"
        if not owners:
            owners, via = self.entry_points.get(f.stem, []), "entry_point"
        if not owners:
            owners, via = [self.by_file_name(f.stem, "script")[0]], "name"
        for name in dict.fromkeys(owners):
            self.assign(name, "script", (f.path, f.workspace_id, None, via))

    # -- whole ------------------------------------------------------------------------------

    def run(
        self,
        files: Iterable[FileEntry],
        links: dict[str, list[str]] | None = None,
        *,
        in_order: bool = False,
    ) -> dict[str, Any]:
        """Resolve ``files``; each summary is decoded once, when its turn comes. With
        ``links``, record there every key each file touches (see :meth:`file_keys`).

        ``in_order``: the files come in the order resolution takes them (component as in
        :data:`ORDER`, then workspace precedence, then path) and each is resolved as it
        comes — a cold start resolves while the rest are still being parsed.
        """
        handlers = {
            "config": self.classes,
            "builder": self.classes,
            "hyperparams": self.classes,
            "spec": self.spec,
            "contract": self.contract,
            "script": self.script,
        }
        for f in files if in_order else self._in_order(files, handlers):
            facts = f.facts
            for line, message in facts.get("problems", ()):
                self.problems.append([f.path, f.workspace_id, line, message])
            handle = handlers.get(f.component)
            if handle is not None:
                handle(f, facts)
            if links is not None:
                for key in self.file_keys(f, facts):
                    paths = links.get(key)
                    if paths is None:
                        links[key] = [f.path]
                    else:
                        paths.append(f.path)
        self.settle_tentative()
        # name order, not the order files were met in: the same for a whole and for an
        # incremental resolution (find_step_by_component's first owner depends on it)
        steps = self.steps
        return {
            "steps": {name: _frozen(steps.pop(name)) for name in sorted(steps)},
            "unmatched": sorted(self.unmatched),
            "problems": sorted(self.problems, key=lambda p: (p[0], p[2])),
        }

    def _in_order(
        self, files: Iterable[FileEntry], handlers: Mapping[str, Any]
    ) -> Iterator[FileEntry]:
        """``files`` in the order :meth:`run` takes them, each group let go when done."""
        by_component: dict[str, list[FileEntry]] = {c: [] for c in ORDER}
        for f in files:
            by_component.setdefault(f.component, []).append(f)
        for component, group in by_component.items():
            if component in handlers:
                group.sort(key=lambda f: (self.rank.get(f.workspace_id, 99), f.path))
            yield from group
            group.clear()  # done with these entries: a whole resolution holds 50,000

    def settle_tentative(self) -> None:
        for name, entries in self.tentative.items():
            components = {component for component, _ in entries}
            if name in self.evidence or len(components) > 1:
                step = self.steps.setdefault(name, {})
                for component, entry in entries:
                    step.setdefault(component, []).append(entry)
                continue
            for component, entry in entries:
                self.unmatched.append(
                    [entry[0], entry[1], component, f"matches no step (its name suggests {name!r})"]
                )
        rank = self.rank
        for parts in self.steps.values():
            for found in parts.values():
                if len(found) > 1:
                    found.sort(key=lambda e: (rank.get(e[1], 99), e[0]))

    # -- what a file can touch ----------------------------------------------------------------

    def file_keys(self, f: FileEntry, facts: Mapping[str, Any] | None = None) -> set[str]:
        """Every key resolving ``f`` may read or write: ``n:<step>`` (a step it may belong
        to or vouch for), ``e:<stem>`` (an entry point: configs, contracts and scripts
        meet there) and ``r:<stem>`` (a contract module specs refer to). A superset: two
        files that share no key, directly or through others, never affect each other."""
        keys: set[str] = set()
        component = f.component
        if facts is None:
            facts = f.facts
        if component in ("config", "builder", "hyperparams"):
            owners = self.by_config if component == "config" else self.by_builder
            matched = False
            for class_name, _has_run, entry_points in facts.get("classes", ()):
                if component != "hyperparams":
                    for name in owners.get(class_name, ()):
                        keys.add(f"n:{name}")
                        matched = True
                keys.update(f"e:{e.removesuffix('.py')}" for e in entry_points)
            if not matched:
                keys.add(f"n:{self.by_file_name(f.stem, component)[0]}")
        elif component == "spec":
            for name, _job, _via, target in self.spec_targets(f, facts):
                keys.add(f"n:{name}")
                if target is not None:
                    keys.add(f"r:{target[0]}")
        elif component == "contract":
            keys.add(f"r:{f.stem}")
            for _var, _line, entry in facts.get("contracts", ()):
                if isinstance(entry, str):
                    keys.add(f"e:{entry.removesuffix('.py')}")
            keys.add(f"n:{self.by_file_name(f.stem, component)[0]}")
        else:
            keys.add(f"e:{f.stem}")
            keys.add(f"n:{self.by_file_name(f.stem, component)[0]}")
        return keys


def _frozen(parts: Mapping[str, list[tuple[Any, ...]]]) -> Parts:
    """A step's components as tuples, in :data:`COMPONENTS` order (lookups rely on it): a
    loaded catalog holds ~100,000 of them, and the garbage collector stops tracking tuples
    of strings (lists it walks on every pass)."""
    return {c: tuple(parts[c]) for c in COMPONENTS if parts.get(c)}


def registry_stems(registry: RegistryFacts) -> dict[str, str]:
    """snake_case stem → step name, what file-name patterns are matched against."""
    return {pascal_to_snake(name): name for name in registry.definitions}


def resolve(
    files: Iterable[FileEntry],
    registry: RegistryFacts,
    workspace_order: Sequence[str],
    *,
    by_stem: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Steps → components → [[path, workspace, job type, how it was matched], …], plus the
    files that match no step and every problem the files carry."""
    return _Resolver(registry, workspace_order, by_stem).run(files)
