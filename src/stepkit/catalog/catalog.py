"""``StepCatalog``: a read-only view of every step of every workspace, over the index.

A lookup reads a few rows and stats the files it answers about; a listing or a search
walks the workspaces once per session first. ``check`` and the models of a step's files
are functions over the view (:mod:`stepkit.catalog.check`, :mod:`stepkit.catalog.models`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from stepkit.catalog.changes import Progress
from stepkit.catalog.index import IndexSession
from stepkit.catalog.records import (
    SHARED_COMPONENTS,
    ComponentFile,
    ListRow,
    RefreshReport,
    StepInfo,
)
from stepkit.catalog.search import Searcher, SearchResult
from stepkit.catalog.store import read_all_parts, read_definitions, read_parts
from stepkit.errors import UnknownStepError
from stepkit.names import split_node_name
from stepkit.project import Project


class StepCatalog:
    """The steps of a project's workspaces, found without importing any step file."""

    def __init__(
        self,
        project: Project,
        *,
        persist: bool = True,
        rebuild: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Open the catalog of ``project``: its index is built when there is none (or
        ``rebuild``), else its folders are checked and what changed is read again.

        Args:
            persist: keep the index in ``<state_dir>/catalog/index.sqlite`` (False: memory).
            workers: parsing processes for a large build (default: every core).
        """
        self.project = project
        self.session = IndexSession(project, persist=persist, workers=workers)
        self.session.open(rebuild=rebuild, progress=progress)
        self._info: dict[tuple[str, str | None], StepInfo] = {}
        self._searcher: Searcher | None = None
        self._generation = self.session.generation

    @classmethod
    def open(
        cls, project: Project | Path | str | None = None, *, rebuild: bool = False
    ) -> StepCatalog:
        """The catalog of the project at ``project`` (a Project, a path, or found from cwd)."""
        loaded = project if isinstance(project, Project) else Project.load(project)
        return cls(loaded, rebuild=rebuild)

    @property
    def last_refresh(self) -> RefreshReport:
        return self.session.last_report

    def _current(self, *, walk: bool = False) -> sqlite3.Connection:
        """The connection, after a walk when asked; what was built from an older index is
        dropped."""
        if walk:
            self.session.ensure_walked()
        if self._generation != self.session.generation:
            self._info.clear()
            self._searcher = None
            self._generation = self.session.generation
        return self.session.conn

    # -- names -------------------------------------------------------------------------------

    def step_names(self) -> list[str]:
        """Every step: registered ones and those found with components only, sorted."""
        return self.session.read(
            lambda c: [n for (n,) in c.execute("SELECT name FROM listing ORDER BY name")]
        )

    def _canonical(self, conn: sqlite3.Connection, name: str) -> str | None:
        """The listed name: ``name`` itself, else the first spelled the same another way
        (snake_case, any case); each a lookup in an index (an OR of two would sort)."""
        found = conn.execute(
            "SELECT name FROM listing WHERE name = ?1 UNION ALL SELECT min(name) FROM "
            "(SELECT name FROM listing WHERE snake = ?1 UNION ALL "
            "SELECT name FROM listing WHERE folded = ?2)",
            (name, name.casefold()),
        ).fetchone()
        return found[0] if found else None  # (min of none: NULL, None here)

    # -- lookups -----------------------------------------------------------------------------

    def get_step_info(self, name_or_node: str, job_type: str | None = None) -> StepInfo:
        """A step by name or pipeline node name (``Foo_training``); ``job_type`` narrows it.

        Raises:
            UnknownStepError: no such step (or no such job type of it), with close names.
        """
        key = (name_or_node, job_type)
        info = self._info.get(key)
        if info is None or self._generation != self.session.generation:
            info = self.session.read(lambda _c: self._build_info(name_or_node, job_type))
            self._info[key] = info
        return info

    def _build_info(self, name_or_node: str, job_type: str | None) -> StepInfo:
        conn = self._current()
        name = self._canonical(conn, name_or_node)
        if name is None:  # a node: the step and its job type
            base, job = split_node_name(name_or_node)
            name = self._canonical(conn, base) if job else None
            if name is None:
                raise UnknownStepError(name_or_node, self.step_names())
            job_type = job_type or job
        parts, stats = read_parts(conn, name)
        if self.session.check_files(stats):  # a file of the step changed: read it again
            conn = self._current()
            parts, _ = read_parts(conn, name)
        definition = read_definitions(conn, name).get(name)
        info = StepInfo.of(name, parts, definition, _ranks(self.project.workspace_ids))
        return info if job_type is None else info.variant(job_type)

    def steps(self) -> list[StepInfo]:
        """Every step as :meth:`get_step_info` gives it, read in one pass after a walk of
        the workspaces (what ``check`` and ``test all`` go through)."""
        self._current(walk=True)
        rank = _ranks(self.project.workspace_ids)

        def read(conn: sqlite3.Connection) -> list[StepInfo]:
            parts, definitions = read_all_parts(conn), read_definitions(conn)
            return [
                StepInfo.of(name, parts.get(name, {}), definitions.get(name), rank)
                for (name,) in conn.execute("SELECT name FROM listing ORDER BY name")
            ]

        found = self.session.read(read)
        self._info.update(((info.name, None), info) for info in found)
        return found

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
        given = Path(path).expanduser()
        candidates = list(dict.fromkeys([str(given.absolute()), str(given.resolve())]))
        self.session.check_files(candidates)
        self._current()
        sql = "SELECT DISTINCT step FROM placements WHERE path = ? ORDER BY step"
        for candidate in candidates:
            found = self.session.read(lambda c: [s for (s,) in c.execute(sql, (candidate,))])  # noqa: B023  (read here, at once)
            if found:
                return found
        return []

    def find_step_by_component(self, path: Path | str) -> str | None:
        """The step a component file belongs to (the first, if it serves several)."""
        found = self.find_steps_by_component(path)
        return found[0] if found else None

    # -- listings ----------------------------------------------------------------------------

    def list_rows(
        self,
        workspace_id: str | None = None,
        job_type: str | None = None,
        step_type: str | None = None,
    ) -> list[ListRow]:
        """What ``catalog list`` shows per step, filtered: steps with a component (or
        definition) in a workspace, with a job type, of a sagemaker step type."""
        if workspace_id is not None:
            self.project.workspace(workspace_id)  # an unknown id is an error, with suggestions
        sql = (  # each filter passes when not given (NULL)
            "SELECT name, step_type, workspace_id, row FROM listing "
            "WHERE (?1 IS NULL OR instr(workspaces, ',' || ?1 || ',') > 0) "
            "AND (?2 IS NULL OR instr(job_types, ',' || ?2 || ',') > 0) "
            "AND (?3 IS NULL OR step_type = ?3) ORDER BY name"
        )
        args = (workspace_id, job_type, step_type)
        self._current(walk=True)
        return self.session.read(
            lambda c: [
                ListRow(name, kind, ws, text) for name, kind, ws, text in c.execute(sql, args)
            ]
        )

    def list_available_steps(
        self,
        workspace_id: str | None = None,
        job_type: str | None = None,
        step_type: str | None = None,
    ) -> list[str]:
        """The names of :meth:`list_rows`."""
        return [row.name for row in self.list_rows(workspace_id, job_type, step_type)]

    def search_steps(
        self, query: str, job_type: str | None = None, *, limit: int = 20
    ) -> list[SearchResult]:
        """Steps ranked by how well they match ``query``, each with its score and reason."""
        allowed = set(self.list_available_steps(job_type=job_type)) if job_type else None
        self._current(walk=True)  # a newer index: the searcher of the older one is dropped

        def search(conn: sqlite3.Connection) -> list[SearchResult]:
            if self._searcher is None or self._searcher.conn is not conn:  # (or rebuilt)
                self._searcher = Searcher(conn)
            return self._searcher.search(query, allowed=allowed, limit=limit)

        return self.session.read(search)


def _ranks(order: Sequence[str]) -> dict[str, int]:
    """Workspace id → its place in precedence order."""
    return {ws: i for i, ws in enumerate(order)}
