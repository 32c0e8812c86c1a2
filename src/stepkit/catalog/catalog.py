"""``StepCatalog``: every step of every workspace, its components, variants and problems.

Built from the persisted index (see :mod:`stepkit.catalog.index`): opening a catalog
walks the workspaces once (a ``stat`` per file), parses only new or changed files, and
resolves steps again only when something changed. Lookups are dictionary hits; the
records they return are built on first use and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from stepkit.catalog.index import (
    Progress,
    RefreshReport,
    fill_lazy,
    refresh,
    registry_key,
    update_paths,
)
from stepkit.catalog.listing import job_types as step_job_types
from stepkit.catalog.listing import select, step_row
from stepkit.catalog.partitioned import CorruptIndexError
from stepkit.catalog.quick import snapshot
from stepkit.catalog.records import (
    ComponentFile,
    Problem,
    StepInfo,
)
from stepkit.catalog.resolution import (
    DESCRIPTION,
    JOB_TYPES,
    STEP_TYPE,
    WORKSPACE,
    Parts,
    RegistryFacts,
    definition_from_row,
)
from stepkit.catalog.store import (
    IndexData,
    gc_paused,
    index_path,
    load_index,
    save_index,
)
from stepkit.errors import UnknownStepError
from stepkit.names import pascal_to_snake, split_node_name

if TYPE_CHECKING:
    from stepkit.catalog.search import SearchIndex, SearchResult
    from stepkit.components import ScriptContract, StepSpecification
    from stepkit.project import Project
    from stepkit.registry.definitions import StepDefinition
    from stepkit.registry.layering import Registry

T = TypeVar("T")
_NO_PARTS: Parts = {}
_component_file = partial(tuple.__new__, ComponentFile)  # what ComponentFile(*row) makes

#: Components variants share (they differ only in spec).
SHARED_COMPONENTS = ("script", "contract", "config", "builder", "hyperparams")


class StepCatalog:
    """The steps of a project's workspaces, found without importing any step file."""

    def __init__(
        self,
        project: Project,
        *,
        registry: Registry | None = None,
        persist: bool = True,
        rebuild: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
        preloaded: IndexData | None = None,
    ) -> None:
        """Open the catalog of ``project``: load the index, refresh what changed, save.

        Args:
            persist: read and write ``<state_dir>/catalog/index.bin`` (False: in memory).
            rebuild: ignore any saved index and parse every file again.
            workers: parsing processes for a large cold start (default: every core).
            preloaded: the saved index, already read (see :mod:`stepkit.catalog.quick`).
        """
        self.project = project
        self._registry = registry
        self._owns_registry = registry is None  # loaded by us: read again on refresh
        self._registry_facts: RegistryFacts | None = None
        self._persist = persist
        self._workers = workers
        self._info: dict[tuple[str, str | None], StepInfo] = {}
        self._by_path: dict[str, list[str]] | None = None
        self._aliases: dict[str, str] | None = None
        self._search: SearchIndex | None = None
        self._preloaded = preloaded
        self._rank = {ws: i for i, ws in enumerate(project.workspace_ids)}
        self.last_refresh = self.refresh(rebuild=rebuild, progress=progress)

    @classmethod
    def open(
        cls, project: Project | Path | str | None = None, *, rebuild: bool = False
    ) -> StepCatalog:
        """The catalog of the project at ``project`` (a Project, a path, or found from cwd)."""
        from stepkit.project import Project

        loaded = project if isinstance(project, Project) else Project.load(project)
        return cls(loaded, rebuild=rebuild)

    # -- building ----------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from stepkit.registry.layering import Registry

            self._registry = Registry.load(self.project)
        return self._registry

    def _build_facts(self) -> RegistryFacts:
        reg = self.registry
        facts = RegistryFacts.build([(ws, reg.view(ws)) for ws in reg.workspace_ids])
        if self._owns_registry:
            # the digest is all resolution needs; the full registry (tens of MB for 10,000
            # steps) is read again, from its cache, only when a StepInfo needs a definition
            self._registry = None
        return facts

    def _facts(self) -> RegistryFacts:
        if self._registry_facts is None:
            data = self._data
            if self._owns_registry and data.registry_key == registry_key(self.project):
                rows = self._recovering(lambda d: d.registry)
                self._registry_facts = RegistryFacts.from_rows(rows)
            else:
                self._registry_facts = self._build_facts()
        return self._registry_facts

    def refresh(self, *, rebuild: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Walk the workspaces again and bring the index up to date."""
        with gc_paused():
            return self._refresh(rebuild=rebuild, progress=progress)

    def _refresh(self, *, rebuild: bool, progress: Progress | None) -> RefreshReport:
        from stepkit.project import scan_project

        warnings: list[str] = []
        previous: IndexData | None = None
        path = index_path(self.project)
        if self._preloaded is not None and not rebuild:
            previous, self._preloaded = self._preloaded, None
        elif self._persist and not rebuild:
            previous, warning = load_index(path)
            if warning:
                warnings.append(warning)
                _log_warning(warning)
        elif not self._persist and hasattr(self, "_data"):
            previous = self._data
        if self._owns_registry:
            self._registry = None  # Registry.load re-reads only registry files that changed
        elif previous is not None:
            previous.registry_key = []  # a registry given by the caller wins over the digest
        self._registry_facts = None
        walk = scan_project(self.project)
        problems = [[str(p.path), p.workspace_id, p.message] for p in walk.problems]
        build = partial(
            refresh,
            self.project,
            self._build_facts,
            walk=walk,
            walk_problems=problems,
            workers=self._workers,
            progress=progress,
        )
        try:
            data, facts, counts = build(previous=previous)
        except CorruptIndexError as exc:  # a section read lazily does not check out
            warnings.append(f"{exc}; rebuilding the catalog index")
            _log_warning(warnings[-1])
            self._registry_facts = None
            data, facts, counts = build(previous=None)
        self._registry_facts = facts
        saved = False
        snap = snapshot(self.project)
        stale_snapshot = data.project != snap
        data.project = snap
        if self._persist and (counts.changed or stale_snapshot):
            saved = save_index(path, data)
        self._install(data)
        return RefreshReport(
            counts.parsed,
            counts.reused,
            counts.removed,
            counts.resolved_again,
            tuple(warnings),
            saved,
        )

    def apply_changes(self, paths: Iterable[Path], *, save: bool = True) -> int:
        """Bring the index up to date for these changed paths only (watch mode); returns
        how many of them changed it. ``save=False`` leaves writing it to :meth:`save`."""
        paths = list(paths)
        try:
            with gc_paused():
                data, touched = update_paths(self.project, self._facts(), self._data, paths)
        except CorruptIndexError as exc:
            self._rebuild_after(exc)
            return len(paths)
        if touched:
            self._install(data)
            if save:
                self.save()
        return touched

    def save(self) -> bool:
        """Write the index now (atomically); False when the state folder is not writable."""
        return self._persist and save_index(index_path(self.project), self._data)

    def _recovering(self, read: Callable[[IndexData], T]) -> T:
        """``read(index)``; when a lazily read section turns out corrupt, the index is
        rebuilt (with a warning in ``last_refresh``) and read again."""
        try:
            return read(self._data)
        except CorruptIndexError as exc:
            self._rebuild_after(exc)
            return read(self._data)

    def _rebuild_after(self, exc: CorruptIndexError) -> None:
        warning = f"{exc}; rebuilding the catalog index"
        _log_warning(warning)
        report = self.refresh(rebuild=True)
        self.last_refresh = replace(report, warnings=(*report.warnings, warning))

    def _install(self, data: IndexData) -> None:
        self._data = data
        self._steps_cache: Mapping[str, Parts] | None = None
        self._info.clear()
        self._file_facts: dict[str, Mapping[str, Any] | None] = {}
        self._by_path = None
        self._aliases = None
        self._search = None

    @property
    def _steps(self) -> Mapping[str, Parts]:
        """Resolved steps: name → component → ((path, workspace, job type, via), …)."""
        if self._steps_cache is None:
            with gc_paused():
                self._steps_cache = self._recovering(lambda d: d.resolved["steps"])
        return self._steps_cache

    # -- names -------------------------------------------------------------------------------

    def _definitions(self) -> Mapping[str, Sequence[Any]]:
        """Registry digest rows by name (see :class:`RegistryFacts`)."""
        return self._facts().definitions

    def definition(self, name: str) -> StepDefinition | None:
        """The registry's definition of a step, as the catalog's workspaces see it (made
        from the digest: the registry itself is not read)."""
        row = self._definitions().get(name)
        return definition_from_row(name, row) if row is not None else None

    def step_names(self) -> list[str]:
        """Every step: registered ones and those found with components only, sorted."""
        return sorted({*self._steps, *self._definitions()})

    def _canonical(self, name: str) -> str | None:
        if name in self._steps or name in self._definitions():
            return name
        if self._aliases is None:
            self._aliases = {}
            for known in self.step_names():
                self._aliases.setdefault(pascal_to_snake(known), known)
                self._aliases.setdefault(known.casefold(), known)
        return self._aliases.get(name) or self._aliases.get(name.casefold())

    def _unknown(self, name: str) -> UnknownStepError:
        return UnknownStepError(name, self.step_names())

    # -- queries -----------------------------------------------------------------------------

    def get_step_info(self, name_or_node: str, job_type: str | None = None) -> StepInfo:
        """A step by name or pipeline node name (``Foo_training``); ``job_type`` narrows it.

        Raises:
            UnknownStepError: no such step (or no such job type of it), with close names.
        """
        key = (name_or_node, job_type)
        info = self._info.get(key)
        if info is None:
            info = self._info[key] = self._build_info(name_or_node, job_type)
        return info

    def _build_info(self, name_or_node: str, job_type: str | None) -> StepInfo:
        steps, definitions = self._steps, self._definitions()
        name: str | None = name_or_node
        if name_or_node not in steps and name_or_node not in definitions:
            name = self._canonical(name_or_node)
            if name is None:
                base, job = split_node_name(name_or_node)
                name = self._canonical(base)
                if name is None:
                    raise self._unknown(name_or_node)
                job_type = job_type or job
        assert name is not None
        parts = steps.get(name, _NO_PARTS)
        row = definitions.get(name)
        components: dict[str, ComponentFile] = {}
        specs: dict[str | None, ComponentFile] = {}
        shadowed: list[ComponentFile] = []
        rank = self._rank
        unknown = len(rank)  # the rank of a workspace the project does not list
        top, workspace = unknown + 1, ""  # the best-ranked contributing workspace
        for component, entries in parts.items():  # in COMPONENTS order (resolution's _frozen)
            if component != "spec":  # the first is the one in effect
                path, ws, job, via = entries[0]
                components[component] = _component_file((path, component, ws, job, via))
                if (r := rank.get(ws, unknown)) < top:
                    top, workspace = r, ws
                if len(entries) > 1:
                    shadowed += [_component_file((e[0], component, *e[1:])) for e in entries[1:]]
                continue
            for path, ws, job, via in entries:  # the first of each job type
                record = _component_file((path, component, ws, job, via))
                if job in specs:
                    shadowed.append(record)
                    continue
                specs[job] = record
                if (r := rank.get(ws, unknown)) < top:
                    top, workspace = r, ws
        if row is not None and rank.get(row[WORKSPACE], unknown) < top:
            workspace = row[WORKSPACE]
        jobs = [j for j in specs if j is not None]  # as listing.job_types has them
        if row is not None and row[JOB_TYPES]:
            jobs = sorted({*jobs, *row[JOB_TYPES]})
        elif len(jobs) > 1:
            jobs.sort()
        job_types = tuple(jobs)
        if job_type is not None and job_type not in job_types:
            variants = [f"{name}_{j}" for j in job_types]
            raise UnknownStepError(f"{name}_{job_type}", variants, what="job-type variant")
        spec = specs.get(job_type) or specs.get(None)
        if spec is None and job_type is None and specs:
            spec = next(iter(specs.values()))
        if spec is not None:
            components["spec"] = spec
        return StepInfo(
            name,
            job_type,
            workspace,
            step_type=row[STEP_TYPE] if row is not None else None,
            components=components,
            specs=specs,
            shadowed=tuple(shadowed),
            job_types=job_types,
            row=row,
        )

    def _workspace_of(self, name: str) -> str:
        """The highest-precedence workspace contributing to a step (as in its StepInfo)."""
        info = self._info.get((name, None))
        if info is not None:
            return info.workspace_id
        rank = self._rank
        found = {e[1] for entries in self._steps.get(name, _NO_PARTS).values() for e in entries}
        row = self._definitions().get(name)
        if row is not None:
            found.add(row[WORKSPACE])
        return min(found, key=lambda ws: rank.get(ws, len(rank)), default="")

    @staticmethod
    def _job_types(parts: Parts, row: Sequence[Any] | None) -> tuple[str, ...]:
        return tuple(step_job_types(parts, row))

    def resolve_pipeline_node(self, node_name: str) -> StepInfo | None:
        """The step (and job type) a pipeline node names, or None."""
        try:
            return self.get_step_info(node_name)
        except UnknownStepError:
            return None

    def get_job_type_variants(self, base_step_name: str) -> list[str]:
        """The job types of a step: from its specs and its registry definition."""
        return list(self.get_step_info(base_step_name).job_types)

    def get_shared_components(self, base_step_name: str) -> dict[str, ComponentFile | None]:
        """The components every job-type variant of a step shares (all but the spec)."""
        info = self.get_step_info(base_step_name)
        return {c: info.components.get(c) for c in SHARED_COMPONENTS}

    def find_steps_by_component(self, path: Path | str) -> list[str]:
        """Every step a component file belongs to (one file may serve several)."""
        if self._by_path is None:
            self._by_path = {}
            for name, parts in self._steps.items():
                for entries in parts.values():
                    for entry in entries:
                        self._by_path.setdefault(entry[0], []).append(name)
        given = Path(path).expanduser()
        for candidate in (given.absolute(), given.resolve()):
            found = self._by_path.get(str(candidate))
            if found:
                return list(dict.fromkeys(found))
        return []

    def find_step_by_component(self, path: Path | str) -> str | None:
        """The step a component file belongs to (the first, if it serves several)."""
        found = self.find_steps_by_component(path)
        return found[0] if found else None

    def list_available_steps(
        self,
        workspace_id: str | None = None,
        job_type: str | None = None,
        step_type: str | None = None,
    ) -> list[str]:
        """Step names, optionally only those with a component (or definition) in a
        workspace, with a job type, or of a sagemaker step type."""
        if workspace_id is not None:
            self.project.workspace(workspace_id)  # an unknown id is an error, with suggestions
        definitions = self._definitions()
        out = []
        for name in self.step_names():
            parts = self._steps.get(name, {})
            row = definitions.get(name)
            if step_type is not None and (row is None or row[STEP_TYPE] != step_type):
                continue
            if job_type is not None and job_type not in self._job_types(parts, row):
                continue
            if workspace_id is not None and not (
                (row is not None and row[WORKSPACE] == workspace_id)
                or any(e[1] == workspace_id for entries in parts.values() for e in entries)
            ):
                continue
            out.append(name)
        return out

    def search_steps(
        self, query: str, job_type: str | None = None, *, limit: int = 20
    ) -> list[SearchResult]:
        """Steps ranked by how well they match ``query``, each with its score and reason."""
        if self._search is None:
            from stepkit.catalog.search import SearchIndex

            definitions = self._definitions()
            self._search = SearchIndex(
                (
                    name,
                    self._workspace_of(name),
                    definitions[name][DESCRIPTION] if name in definitions else "",
                )
                for name in self.step_names()
            )
        allowed = set(self.list_available_steps(job_type=job_type)) if job_type else None
        return self._search.search(query, allowed=allowed, limit=limit)

    def list_rows(
        self,
        workspace_id: str | None = None,
        job_type: str | None = None,
        step_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """What ``catalog list`` shows per step: workspace, type, job types, components."""
        definitions = self._definitions()
        rank = {ws: i for i, ws in enumerate(self.project.workspace_ids)}
        return [
            step_row(name, self._steps.get(name, {}), definitions.get(name), rank)
            for name in self.list_available_steps(workspace_id, job_type, step_type)
        ]

    def list_json(
        self,
        workspace_id: str | None = None,
        job_type: str | None = None,
        step_type: str | None = None,
    ) -> list[str]:
        """:meth:`list_rows` as JSON texts, straight from the index (no rebuilding)."""
        if workspace_id is not None:
            self.project.workspace(workspace_id)  # an unknown id is an error, with suggestions
        with gc_paused():
            rows = self._recovering(lambda d: d.listing)
        return select(rows, workspace_id=workspace_id, job_type=job_type, step_type=step_type)

    # -- models, on demand -------------------------------------------------------------------

    def summary(self, path: Path | str) -> Mapping[str, Any] | None:
        """What the index keeps of a file (None: not indexed); a lazily indexed file (a
        script) is parsed now."""
        key = str(path)
        if key not in self._data.files:
            return None

        def read(data: IndexData) -> Mapping[str, Any] | None:
            fill_lazy(data, [key])
            return data.summary(key)

        return self._recovering(read)

    def parse_lazy(self) -> int:
        """Parse every lazily indexed file (scripts) now, and keep the result in the index."""
        with gc_paused():
            count = self._recovering(lambda d: fill_lazy(d, list(d.files)))
        if count and self._persist:
            save_index(index_path(self.project), self._data)
        return count

    def facts(self, path: Path | str) -> Mapping[str, Any] | None:
        """Everything discovery reads from an indexed file, read from it now (None: not
        indexed). Only the small summary is kept in the index; details are read on demand."""
        from stepkit.catalog.discovery import read_facts

        key = str(path)
        if key not in self._file_facts:  # read once per index state: planning asks often
            row = self._data.files.get(key)
            self._file_facts[key] = read_facts(key, row[1]) if row else None
        return self._file_facts[key]

    def get_contract(self, name_or_node: str) -> ScriptContract | None:
        """The step's contract as a :class:`ScriptContract` (built from ``ast`` facts)."""
        from stepkit.catalog.discovery import contract_from_facts

        info = self.get_step_info(name_or_node)
        component = info.components.get("contract")
        facts = self.facts(component.path) if component else None
        contracts = facts.get("contracts") if facts else None
        return contract_from_facts(contracts[0]) if contracts else None

    def get_spec(self, name_or_node: str, job_type: str | None = None) -> StepSpecification | None:
        """The step's spec for a job type as a :class:`StepSpecification`, contract included."""
        from stepkit.catalog.discovery import spec_from_facts

        info = self.get_step_info(name_or_node, job_type)
        component = info.components.get("spec")
        facts = self.facts(component.path) if component else None
        specs = [s for s in (facts or {}).get("specs", ()) if s.get("job_type") == info.job_type]
        specs = specs or list((facts or {}).get("specs", ()))
        if not specs:
            return None
        spec_type = info.definition.spec_type if info.definition else info.name
        if info.job_type:
            spec_type = f"{spec_type}_{info.job_type.capitalize()}"
        return spec_from_facts(specs[0], step_type=spec_type, contract=self.get_contract(info.name))

    # -- problems ----------------------------------------------------------------------------

    def check(self) -> list[Problem]:
        """Every problem: broken and unmatched files, unregistered and incomplete steps,
        broken references between components."""
        from stepkit.catalog.check import find_problems

        self._recovering(lambda d: (d.resolved, d.summaries))  # read (or rebuilt) here
        return find_problems(self)

    @property
    def data(self) -> IndexData:
        return self._data


def _log_warning(message: str) -> None:
    """Record the rebuild as an event; people see it in ``last_refresh.warnings`` (which the
    CLI prints as ``warning: …``), so it is not printed twice at the default log level."""
    from stepkit.observability import get_logger

    get_logger("stepkit.catalog").info("catalog.index_rebuilt", reason=message)
