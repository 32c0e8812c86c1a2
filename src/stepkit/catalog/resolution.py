"""Which step each component file belongs to: the registry first, file names last.

config / builder: the file defining the registry's ``config_class`` / ``builder_step_name``;
spec: the step its declared step type names (the job type from there too); contract: the
step whose spec refers to it, else whose config names its entry point; script: the step
whose contract (else config) names it; file-name patterns only where all that says nothing.
A name only file names suggest is an *unregistered* step when something vouches for it.

Each file reads and writes keys (:meth:`Resolver.file_keys`): files sharing none, directly
or through others, never affect each other, so :func:`resolve_changed` resolves again
only the files connected to the changed ones — with the result of a whole resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from stepkit.catalog.records import COMPONENTS, ComponentFile, Parts
from stepkit.names import (
    STANDARD_JOB_TYPES,
    StemIndex,
    component_stem,
    expand_abbreviations,
    snake_to_pascal,
    strip_job_type,
)

if TYPE_CHECKING:
    from stepkit.registry.definitions import StepDefinition
    from stepkit.registry.layering import Registry

#: Order in which components are resolved: later ones lean on earlier ones.
ORDER: Final = ("interface", "config", "builder", "spec", "hyperparams", "contract", "script")
_CLASS_SUFFIX: Final = {
    "config": "Config",
    "builder": "StepBuilder",
    "hyperparams": "Hyperparameters",
}
_EMPTY: Final[Mapping[str, Any]] = {}
#: Above this share of all files, resolving everything is as cheap and simpler.
MAX_SHARE: Final = 0.25


def broken_reason(path: str, facts: Mapping[str, Any]) -> str | None:
    """``path:line: why`` when discovery could read nothing of the file, else None."""
    if not facts.get("broken"):
        return None
    line, message = facts["problems"][0]
    return f"{path}:{line}: {message}" if line else f"{path}: {message}"


class FileEntry(NamedTuple):
    """One indexed file as resolution sees it: where, which workspace and kind, summary."""

    path: str
    workspace_id: str
    component: str
    summary: Mapping[str, Any] | None  # see discovery.summarize (None: not parsed)

    @property
    def facts(self) -> Mapping[str, Any]:
        return self.summary if self.summary is not None else _EMPTY

    @property
    def broken(self) -> str | None:
        """``path:line: why`` when nothing of the file could be read (a syntax error, not
        UTF-8, unreadable): it still holds its place, but its step is not complete."""
        return broken_reason(self.path, self.facts)

    @property
    def stem(self) -> str:
        name = self.path.rsplit("/", 1)[-1]
        return name.removesuffix(".step.yaml") if self.component == "interface" else name[:-3]


class Unmatched(NamedTuple):
    """A file that matches no step."""

    path: str
    workspace_id: str
    component: str
    message: str


class Lookups(Protocol):
    """The registry's answers resolution asks for, by what a file declares."""

    def config_owners(self, config_class: str) -> Sequence[str]: ...
    def builder_owners(self, builder_class: str) -> Sequence[str]: ...
    def spec_type_owner(self, spec_type: str) -> str | None: ...
    def stem_owner(self, stem: str) -> str | None: ...


class MemoryLookups:
    """:class:`Lookups` over definitions in memory: tables built once (a whole resolution)."""

    def __init__(self, definitions: Mapping[str, StepDefinition]) -> None:
        self.by_stem = StemIndex(sorted(definitions))  # acronyms cased either way
        self.by_config: dict[str, list[str]] = {}
        self.by_builder: dict[str, list[str]] = {}
        self.by_spec_type: dict[str, str] = {}
        for name, d in sorted(definitions.items()):
            self.by_config.setdefault(d.config_class, []).append(name)
            self.by_builder.setdefault(d.builder_step_name, []).append(name)
            self.by_spec_type.setdefault(d.spec_type, name)

    def config_owners(self, config_class: str) -> Sequence[str]:
        return self.by_config.get(config_class, ())

    def builder_owners(self, builder_class: str) -> Sequence[str]:
        return self.by_builder.get(builder_class, ())

    def spec_type_owner(self, spec_type: str) -> str | None:
        return self.by_spec_type.get(spec_type)

    def stem_owner(self, stem: str) -> str | None:
        return self.by_stem.get(stem)


@dataclass(frozen=True, slots=True)
class RegistryFacts:
    """What resolution needs of the registry: one definition per step, as the catalog's
    workspaces see it, and the job types file names may end with. ``lookups``: answers
    from the index itself (an incremental resolution asks a few; None: built from
    ``definitions``)."""

    definitions: Mapping[str, StepDefinition]
    job_types: tuple[str, ...] = STANDARD_JOB_TYPES
    lookups: Lookups | None = None

    @classmethod
    def of(cls, definitions: Mapping[str, StepDefinition]) -> RegistryFacts:
        custom = sorted({jt for d in definitions.values() for jt in d.job_types})
        extra = [j for j in custom if j not in STANDARD_JOB_TYPES]
        return cls(definitions, (*STANDARD_JOB_TYPES, *extra))

    @classmethod
    def build(cls, registry: Registry) -> RegistryFacts:
        """A step's definition comes from the first workspace (in precedence order, the
        core last) whose own layer defines or overrides it, else from the core's view."""
        views = [(ws, registry.view(ws)) for ws in registry.workspace_ids]
        chosen: dict[str, StepDefinition] = {}
        for workspace_id, view in views:
            for name, definition in view.items():
                if definition.workspace_id == workspace_id:
                    chosen.setdefault(name, definition)
        for _, view in views[-1:]:
            for name, definition in view.items():
                chosen.setdefault(name, definition)
        return cls.of(chosen)


@dataclass(slots=True)
class Resolution:
    """Resolved steps, files that match no step, and the keys each file touches."""

    steps: dict[str, Parts] = field(default_factory=dict)
    unmatched: list[Unmatched] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (key, path)


class Resolver:
    """One resolution over the registry's tables."""

    def __init__(self, registry: RegistryFacts, workspace_order: Sequence[str]) -> None:
        self.registry = registry
        self.rank = {ws: i for i, ws in enumerate(workspace_order)}
        self.lookups = registry.lookups or MemoryLookups(registry.definitions)
        self.named: dict[tuple[str, str], tuple[str, str | None]] = {}  # by_file_name's
        self.steps: dict[str, dict[str, list[ComponentFile]]] = {}
        self.evidence: set[str] = set()  # unregistered names something vouches for
        self.tentative: dict[str, list[ComponentFile]] = {}
        self.entry_points: dict[str, list[str]] = {}  # script stem → steps (configs)
        self.contract_refs: dict[tuple[str, str], list[str]] = {}  # (stem, var) → steps
        self.contract_scripts: dict[str, list[str]] = {}  # script stem → steps (contracts)
        self.source_dirs: dict[str, list[str]] = {}  # a source_dir's last folder → source_dirs
        self.out = Resolution()

    # -- bookkeeping -------------------------------------------------------------------------

    def assign(self, name: str, entry: ComponentFile) -> None:
        if name in self.registry.definitions or name in self.evidence:
            self.steps.setdefault(name, {}).setdefault(entry.component, []).append(entry)
        else:
            self.tentative.setdefault(name, []).append(entry)

    def vouch(self, name: str) -> None:
        if name not in self.registry.definitions:
            self.evidence.add(name)

    def by_file_name(self, stem: str, component: str) -> tuple[str, str | None]:
        """The fallback: (step name, job type) a component file's name suggests."""
        found = self.named.get((stem, component))
        if found is None:
            found = self.named[(stem, component)] = self._by_file_name(stem, component)
        return found

    def _by_file_name(self, stem: str, component: str) -> tuple[str, str | None]:
        base = component_stem(stem, component)
        candidates: list[tuple[str, str | None]] = [(base, None)]
        if component == "spec":
            stripped, job = strip_job_type(base, self.registry.job_types)
            if job:
                candidates.append((stripped, job))
        for candidate, job in list(candidates):
            expanded = expand_abbreviations(candidate)
            if expanded != candidate:
                candidates.append((expanded, job))
        for candidate, job in candidates:
            found = self.lookups.stem_owner(candidate)
            if found is not None:
                return found, job
        candidate, job = (
            candidates[1] if len(candidates) > 1 and candidates[1][1] else candidates[0]
        )
        return snake_to_pascal(candidate), job

    # -- components --------------------------------------------------------------------------

    def interface(self, f: FileEntry) -> None:
        """An interface declares its step: its contract, base spec and one spec per variant;
        its entry point names the script (over any file-name pattern)."""
        found = f.facts.get("interface")
        if found is None:  # unreadable (a problem of its own): its file name is all there is
            name, via, variants = self.by_file_name(f.stem, "interface")[0], "name", {}
        else:
            name, via, variants = found["step"], "interface", found["variants"]
            self.vouch(name)
            if found["entry_point"]:  # none: a step with no script
                self.contract_scripts.setdefault(found["entry_point"][:-3], []).append(name)
            if found["source_dir"]:
                folder = _folder(found["source_dir"])
                self.source_dirs.setdefault(folder.rsplit("/", 1)[-1], []).append(folder)
        self.assign(name, ComponentFile(f.path, "contract", f.workspace_id, None, via, f.broken))
        for job in (None, *variants):
            self.assign(name, ComponentFile(f.path, "spec", f.workspace_id, job, via, f.broken))

    def classes(self, f: FileEntry) -> None:
        owners = self._owners(f.component)
        classes = f.facts.get("classes", ())
        matched = False
        for c in classes:
            for name in owners(c["name"]):
                self.assign(
                    name,
                    ComponentFile(f.path, f.component, f.workspace_id, None, "registry", f.broken),
                )
                matched = True
                self.note_entry_points(name, c["entry_points"])
        if matched:
            return
        name, _ = self.by_file_name(f.stem, f.component)
        for c in classes:
            if c["name"] == f"{name}{_CLASS_SUFFIX[f.component]}":
                self.vouch(name)
            if f.component == "config":
                self.note_entry_points(name, c["entry_points"])
        self.assign(
            name, ComponentFile(f.path, f.component, f.workspace_id, None, "name", f.broken)
        )

    def _owners(self, component: str) -> Callable[[str], Sequence[str]]:
        """The steps whose registry names a class, for the classes of this component."""
        if component == "config":
            return self.lookups.config_owners
        if component == "builder":
            return self.lookups.builder_owners
        return lambda _name: ()  # hyperparameters: named by no registry field

    def note_entry_points(self, name: str, entry_points: Iterable[str]) -> None:
        for entry in entry_points:
            self.entry_points.setdefault(entry.removesuffix(".py"), []).append(name)

    def spec_targets(
        self, f: FileEntry
    ) -> list[tuple[str, str | None, str, tuple[str, str] | None]]:
        """(step, job type, via, (contract stem, variable) it refers to) per declared spec;
        what a spec file says depends on the registry and the file only."""
        out: list[tuple[str, str | None, str, tuple[str, str] | None]] = []
        for s in f.facts.get("specs") or ():
            name, job, literal, ref = s["step"], s["job_type"], s["step_type"], s["contract_ref"]
            if name is None and literal:
                base, _, suffix = literal.partition("_")
                name = self.lookups.spec_type_owner(base) or base
                job = suffix.lower() or None
            via = "declared"
            if name is None:
                name, job = self.by_file_name(f.stem, "spec")
                via = "name"
            target = (ref[0].rsplit(".", 1)[-1] if ref[0] else f.stem, ref[1]) if ref else None
            out.append((name, job, via, target))
        if not out:
            name, job = self.by_file_name(f.stem, "spec")
            out.append((name, job, "name", None))
        return out

    def spec(self, f: FileEntry) -> None:
        for name, job, via, target in self.spec_targets(f):
            if via == "declared":
                self.vouch(name)
            self.assign(name, ComponentFile(f.path, "spec", f.workspace_id, job, via, f.broken))
            if target is not None:
                self.contract_refs.setdefault(target, []).append(name)

    def contract(self, f: FileEntry) -> None:
        contracts = f.facts.get("contracts", ())
        entries = [
            c["entry_point"].removesuffix(".py")
            for c in contracts
            if isinstance(c["entry_point"], str)
        ]
        owners = [n for c in contracts for n in self.contract_refs.get((f.stem, c["var"]), ())]
        via = "spec"
        if not owners:
            via = "entry_point"
            owners = [n for entry in entries for n in self.entry_points.get(entry, ())]
        if not owners:
            owners, via = [self.by_file_name(f.stem, "contract")[0]], "name"
        for name in dict.fromkeys(owners):
            if via == "spec":
                self.vouch(name)
            self.assign(
                name, ComponentFile(f.path, "contract", f.workspace_id, None, via, f.broken)
            )
            for entry in entries:
                self.contract_scripts.setdefault(entry, []).append(name)

    def script(self, f: FileEntry) -> None:
        owners, via = self.contract_scripts.get(f.stem, []), "contract"
        if not owners:
            owners, via = self.entry_points.get(f.stem, []), "entry_point"
        if not owners and self.in_source_dir(f.path):
            return  # a helper module of a step's package: imported by its script, not a step
        if not owners:
            owners, via = [self.by_file_name(f.stem, "script")[0]], "name"
        for name in dict.fromkeys(owners):
            self.assign(name, ComponentFile(f.path, "script", f.workspace_id, None, via, f.broken))

    def in_source_dir(self, path: str) -> bool:
        return any(
            f"/{folder}/" in path
            for part in _package_parts(path)
            for folder in self.source_dirs.get(part, ())
        )

    # -- whole -------------------------------------------------------------------------------

    def run(
        self,
        files: Iterable[FileEntry],
        *,
        ordered: bool = False,
        links: Callable[[list[tuple[str, str]]], None] | None = None,
    ) -> Resolution:
        """Resolve ``files``, taken as :data:`ORDER`, then workspace precedence, then path
        (``ordered``: they come so, and each is let go once resolved). The keys each file
        touches go to ``links`` a batch at a time when given, else into the result."""
        handlers: dict[str, Callable[[FileEntry], None]] = dict.fromkeys(
            ("config", "builder", "hyperparams"), self.classes
        ) | {
            "spec": self.spec,
            "contract": self.contract,
            "script": self.script,
            "interface": self.interface,
        }
        position = {c: i for i, c in enumerate(ORDER)}

        def precedence(f: FileEntry) -> tuple[int, int, str]:
            return position.get(f.component, 99), self.rank.get(f.workspace_id, 99), f.path

        ordered_files = files if ordered else sorted(files, key=precedence)
        out = self.out
        for f in ordered_files:
            handle = handlers.get(f.component)
            if handle is not None:
                handle(f)
            out.links += [(key, f.path) for key in self.file_keys(f)]
            if links is not None and len(out.links) > 10_000:
                links(out.links)
                out.links = []
        if links is not None:
            links(out.links)
            out.links = []
        self._settle()
        return out

    def _settle(self) -> None:
        for name, entries in self.tentative.items():
            if name in self.evidence or len({e.component for e in entries}) > 1:
                step = self.steps.setdefault(name, {})
                for entry in entries:
                    step.setdefault(entry.component, []).append(entry)
                continue
            for entry in entries:
                message = f"matches no step (its name suggests {name!r})"
                self.out.unmatched.append(
                    Unmatched(entry.location, entry.workspace_id, entry.component, message)
                )
        rank = self.rank

        def precedence(e: ComponentFile) -> tuple[int, bool, str]:
            # within a workspace an interface wins over the classic file of the same step
            return rank.get(e.workspace_id, 99), e.via != "interface", e.location

        for name in sorted(self.steps):
            parts = self.steps[name]
            self.out.steps[name] = {
                c: tuple(sorted(found, key=precedence)) if len(found) > 1 else (found[0],)
                for c in COMPONENTS
                if (found := parts.get(c))
            }

    # -- what a file can touch ---------------------------------------------------------------

    def file_keys(self, f: FileEntry) -> set[str]:
        """Every key resolving ``f`` may read or write: ``n:<step>`` (a step it may belong
        to or vouch for), ``e:<stem>`` (an entry point: configs, contracts and scripts meet
        there) and ``r:<stem>`` (a contract module specs refer to). A superset: two files
        that share no key, directly or through others, never affect each other."""
        keys: set[str] = set()
        component, facts = f.component, f.facts
        if component == "interface":
            found = facts.get("interface")
            if found is None:
                return {f"n:{self.by_file_name(f.stem, component)[0]}"}
            keys.add(f"n:{found['step']}")
            if found["entry_point"]:
                keys.add(f"e:{found['entry_point'][:-3]}")
            if found["source_dir"]:
                keys.add(f"d:{_folder(found['source_dir']).rsplit('/', 1)[-1]}")
            return keys
        if component in ("config", "builder", "hyperparams"):
            owners = self._owners(component)
            matched = False
            for c in facts.get("classes", ()):
                for name in owners(c["name"]):
                    keys.add(f"n:{name}")
                    matched = True
                keys.update(f"e:{e.removesuffix('.py')}" for e in c["entry_points"])
            if not matched:
                keys.add(f"n:{self.by_file_name(f.stem, component)[0]}")
        elif component == "spec":
            for name, _job, _via, target in self.spec_targets(f):
                keys.add(f"n:{name}")
                if target is not None:
                    keys.add(f"r:{target[0]}")
        elif component == "contract":
            keys.add(f"r:{f.stem}")
            for c in facts.get("contracts", ()):
                if isinstance(c["entry_point"], str):
                    keys.add(f"e:{c['entry_point'].removesuffix('.py')}")
            keys.add(f"n:{self.by_file_name(f.stem, component)[0]}")
        else:
            keys.add(f"e:{f.stem}")
            keys.add(f"n:{self.by_file_name(f.stem, component)[0]}")
            keys.update(f"d:{part}" for part in _package_parts(f.path))
        return keys


def _folder(source_dir: str) -> str:
    """A contract's ``source_dir`` as a relative folder: ``./scripts/x/`` → ``scripts/x``."""
    return source_dir.strip("/").removeprefix("./")


def _package_parts(path: str) -> list[str]:
    """The folders a script sits in below ``scripts/`` (a package it may be a module of)."""
    parts = path.split("/")[:-1]
    top = len(parts) - 1 - parts[::-1].index("scripts") if "scripts" in parts else len(parts) - 2
    return parts[top + 1 :]


@dataclass(frozen=True, slots=True)
class PartialResolution:
    """The steps a change reached, resolved again: ``names`` are replaced by ``result``'s
    steps, and the unmatched entries of ``paths`` by ``result``'s."""

    names: set[str]
    paths: set[str]
    result: Resolution


def resolve_changed(
    resolver: Resolver,
    *,
    old: Mapping[str, FileEntry | None],
    current: Mapping[str, FileEntry],
    linked: Callable[[str], Iterable[str]],
    entry: Callable[[str], FileEntry],
    total: int,
) -> PartialResolution | None:
    """What to resolve again after the files in ``old`` changed; None when a whole
    resolution is the better deal (the change reaches too many files).

    Args:
        old: changed path → its entry before (None: it is new).
        current: changed path → its entry now (absent: it is gone).
        linked: key → paths of the indexed files that touch it (as stored before).
        entry: path → its current :class:`FileEntry`.
        total: how many files are indexed.
    """
    seeds: set[str] = set()
    for path, before in old.items():
        if before is not None:
            seeds |= resolver.file_keys(before)
        now = current.get(path)
        if now is not None:
            seeds |= resolver.file_keys(now)
    keys, frontier = set(seeds), list(seeds)
    reached: dict[str, FileEntry] = dict(current)
    limit = max(50, MAX_SHARE * total)
    while frontier:
        for path in linked(frontier.pop()):
            if path in reached or (path in old and path not in current):
                continue
            f = reached[path] = entry(path)
            if len(reached) > limit:
                return None
            for other in resolver.file_keys(f) - keys:
                keys.add(other)
                frontier.append(other)
    names = {key[2:] for key in keys if key.startswith("n:")}
    part = Resolver(resolver.registry, list(resolver.rank)).run(reached.values())
    if not names.issuperset(part.steps):
        return None  # cannot happen while file_keys is a superset; never splice wrongly
    return PartialResolution(names, set(old) | set(reached), part)
