"""The index session: keeps the SQLite index in line with the workspaces, asking the
file system only what a question needs — every file's stat (:meth:`IndexSession.refresh`),
the folders' own stat (when a session opens: entries added, removed, renamed) or a few
files' (:meth:`IndexSession.check_files`). What changed is applied in one transaction
(:mod:`stepkit.catalog.changes`); see docs/catalog.md, "The index".
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from stepkit.catalog.changes import (
    LAZY_KINDS,
    RACY_NS,
    Plan,
    Progress,
    folder_row,
    parsing,
    plan_changes,
    resolve_all,
    resolve_some,
    stored_folders,
    stored_problems,
    write_changes,
)
from stepkit.catalog.derived import changed_rows, derived_workspaces, index_registry, narrow
from stepkit.catalog.discovery import read_summary
from stepkit.catalog.records import RefreshReport
from stepkit.catalog.resolution import RegistryFacts
from stepkit.catalog.store import (
    StoredFile,
    count_change,
    get_meta,
    index_path,
    open_index,
    remove_index,
    set_meta,
    write_definitions,
)
from stepkit.errors import CorruptIndexError
from stepkit.observability import get_logger
from stepkit.registry.layering import Registry
from stepkit.sqlite import StoreKind, store_error, transaction
from stepkit.walk import Walk, scan_folder, scan_project, scan_workspace

if TYPE_CHECKING:
    from pathlib import Path

    from stepkit.project import Project

T = TypeVar("T")


def registry_key(project: Project) -> list[Any]:
    """What resolution depends on besides the files: the workspaces and their registries
    (a registry derived from interface files changes with them: see ``_sync``)."""
    return [
        [
            ws.id,
            str(ws.steps_dir),
            str(ws.registry_file or ""),
            *(_stat_of(str(ws.registry_file or "")) if ws.id not in derived else ["derived"]),
        ]
        for derived in [derived_workspaces(project)]
        for ws in project.workspaces
    ]


#: the catalog index in messages (it is rebuilt, never re-initialised by doctor)
INDEX_KIND = StoreKind("catalog index", "catalog", "files")


class IndexSession:
    """One connection to a project's index and the freshness it has established."""

    def __init__(
        self,
        project: Project,
        *,
        persist: bool = True,
        workers: int | None = None,
    ) -> None:
        self.project = project
        self.path = index_path(project) if persist else None
        self.generation = 0  # goes up whenever the index changes: views drop what they built
        self._walked = False  # every workspace walked in this session
        self.last_report = RefreshReport()
        self._workers = workers
        self._warnings: list[str] = []
        self._touched: set[str] = set()  # files the last change added, changed or removed
        self._read_at: dict[str, tuple[int, ...]] = {}  # racy files read: the stat seen
        self._rank = {ws: i for i, ws in enumerate(project.workspace_ids)}
        self._derived = derived_workspaces(project)
        self.conn = self._connect()

    # -- the file ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path is not None and not _can_write(self.path):
            self._warn(
                f"the catalog index {self.path} cannot be written (a read-only state "
                "folder): the catalog is built in memory for this command, correct but not kept"
            )
            self.path = None
        if self.path is None:
            return open_index(":memory:")
        try:
            return open_index(self.path)
        except CorruptIndexError as exc:
            self._warn(f"{exc}; rebuilding it")
        remove_index(self.path)
        return open_index(self.path)

    def _warn(self, message: str) -> None:
        self._warnings.append(message)  # the CLI prints these as ``warning: …``
        get_logger("stepkit.catalog").info("catalog.index_rebuilt", reason=message)

    def _recover(self, exc: sqlite3.DatabaseError) -> RefreshReport:
        """The index turned out damaged while in use: build it again, with a warning."""
        self.conn.close()
        self._warn(f"{CorruptIndexError(self.path or ':memory:', str(exc))}; rebuilding it")
        if self.path is not None:
            remove_index(self.path)
        self.conn = open_index(self.path or ":memory:")
        self.generation += 1
        return self.refresh()

    def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """``query(connection)``; an index found damaged meanwhile is rebuilt, and asked again."""
        try:
            return query(self.conn)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                # another process held the index longer than the busy timeout: said as such
                raise store_error(exc, path=self.path or ":memory:", kind=INDEX_KIND) from exc
            self._recover(exc)
            return query(self.conn)

    def close(self) -> None:
        self.conn.close()

    # -- freshness ---------------------------------------------------------------------------

    def open(self, *, rebuild: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Ready the index: built when empty (or ``rebuild``), else its folders checked."""
        if rebuild:
            with transaction(self.conn):
                self.conn.execute("DELETE FROM folders")
                self.conn.execute("DELETE FROM files")
                self.conn.execute("DELETE FROM meta WHERE key = 'registry_key'")
                count_change(self.conn)
        empty = self.read(lambda c: c.execute("SELECT 1 FROM folders LIMIT 1").fetchone() is None)
        return self.read(
            lambda _c: self.refresh(progress=progress) if empty else self._check_folders()
        )

    def refresh(self, *, progress: Progress | None = None) -> RefreshReport:
        """Walk every workspace and bring the index up to date."""
        report = self._sync(scan_project(self.project), None, progress)
        self._walked = True
        return report

    def ensure_walked(self) -> None:
        """Walk every workspace, once per session (what ``list``, ``search``, ``check`` need)."""
        if not self._walked:
            self.refresh()

    def _check_folders(self) -> RefreshReport:
        """Stat every indexed folder (and the registries); rescan the folders that changed."""
        if get_meta(self.conn, "registry_key") != registry_key(self.project):
            return self.refresh()
        roots: dict[str, tuple[str, str]] = {}
        known = set()
        for path, workspace_id, kind, mtime_ns, inode in self.conn.execute(
            "SELECT path, workspace_id, kind, mtime_ns, inode FROM folders"
        ):
            known.add(path)
            if _stat_of(path)[::2] != (mtime_ns, inode):
                roots[path] = (workspace_id, kind)
        for ws in self.project.workspaces:
            if str(ws.steps_dir) not in known:
                roots[str(ws.steps_dir)] = (ws.id, "")
        return self._rescan(roots)

    def check_files(self, files: Iterable[StoredFile | str]) -> bool:
        """Stat these indexed files (their stored rows, or paths); rescan the folders of
        those that changed. True: the index changed."""
        given = list(files)
        rows = [f for f in given if isinstance(f, StoredFile)]
        for path in {f for f in given if isinstance(f, str)}:
            rows += [
                StoredFile(path, folder, ws, kind, (mtime, size, inode))
                for folder, ws, kind, mtime, size, inode in self.conn.execute(
                    "SELECT folder, workspace_id, kind, mtime_ns, size, inode FROM files "
                    "WHERE path = ?",
                    (path,),
                )
            ]
        roots = {
            f.folder: (f.workspace_id, f.kind)
            for f in rows
            if (now := _stat_of(f.path)) != f.stat and not self._just_read(f.path, now)
        }
        before = self.generation
        self._rescan(roots)
        return self.generation != before

    def _just_read(self, path: str, stat: tuple[int, ...]) -> bool:
        """Whether this session read the file as it is now, within the clock tick of its
        change: reading it again says no more until the tick is over (a racy row stays
        racy in the index, so the next session reads it again)."""
        return self._read_at.get(path) == stat and time.time_ns() < stat[0] + RACY_NS

    def apply_changes(self, paths: Iterable[Path]) -> int:
        """Bring the index up to date for these changed paths (watch mode): their folders
        are rescanned, not the tree. Returns how many files changed."""
        roots: dict[str, tuple[str, str]] = {}
        given = [str(p) for p in paths]
        for path in given:
            where = self._place(path)
            if where is not None:
                folder, workspace_id, kind = where
                roots[folder] = (workspace_id, kind)
        self._touched.clear()
        self._rescan(roots)
        return sum(1 for t in self._touched if any(t == p or t.startswith(f"{p}/") for p in given))

    def _place(self, path: str) -> tuple[str, str, str] | None:
        """(folder to rescan, workspace, kind) for a changed path: the nearest indexed
        folder above it (a new folder is found by rescanning its parent)."""
        folder = path
        while folder and folder != "/":
            folder = folder.rpartition("/")[0]
            found = self.conn.execute(
                "SELECT workspace_id, kind FROM folders WHERE path = ?", (folder,)
            ).fetchone()
            if found is not None:
                workspace_id, kind = found
                return folder, workspace_id, kind
        return None

    def _rescan(self, roots: dict[str, tuple[str, str]]) -> RefreshReport:
        if not roots:
            return RefreshReport(warnings=tuple(self._warnings))
        top = [r for r in roots if not any(r.startswith(f"{o}/") for o in roots if o != r)]
        walk, scope = Walk(), []
        for root in sorted(top):
            workspace_id, kind = roots[root]
            scope.append((root, workspace_id))
            if kind:
                if os.path.isdir(root):
                    scan_folder(root, workspace_id, kind, walk)
            else:
                scan_workspace(self.project.workspace(workspace_id), walk)
        return self._sync(walk, scope, None)

    # -- the registry ------------------------------------------------------------------------

    def _load_registry(
        self, fresh: Mapping[str, tuple[str, str | None]] | None = None
    ) -> RegistryFacts:
        """What resolution needs of the registry (read outside any transaction: the
        registry caches its parse in this index)."""
        return RegistryFacts.build(self.registry(fresh))

    def registry(
        self,
        fresh: Mapping[str, tuple[str, str | None]] | None = None,
        *,
        names: set[str] | None = None,
    ) -> Registry:
        """The project's registry, derived ones from the index (see :func:`index_registry`)."""
        return index_registry(self.conn, self.project, self._derived, fresh, names=names)

    # -- one change ----------------------------------------------------------------------------

    def _sync(
        self, walk: Walk, scope: list[tuple[str, str]] | None, progress: Progress | None
    ) -> RefreshReport:
        """Make the index hold ``walk``, a fresh walk of the folders ``scope`` (root,
        workspace) and all below them (None: every workspace)."""
        need_registry = get_meta(self.conn, "registry_key") != registry_key(self.project)
        rows = {scan.folder: folder_row(scan, time.time_ns()) for scan in walk.folders}
        problems = sorted((str(p.path), p.workspace_id, p.message) for p in walk.problems)
        if (
            not need_registry
            and stored_folders(self.conn, scope) == {f: folder.row for f, folder in rows.items()}
            and problems == stored_problems(self.conn, scope)
        ):
            self.last_report = RefreshReport(reused=len(walk), warnings=tuple(self._warnings))
            return self.last_report
        # parsed outside the transaction (a cold start parses for seconds) with the
        # registry read meanwhile; planned again inside when another process changed the
        # files in between, so that what it wrote is seen (the count of changes, not
        # SQLite's data_version: the registry's cache in this file is written meanwhile)
        seen = get_meta(self.conn, "changes")
        outside = plan_changes(self.conn, walk, scope, rows)
        jobs = outside.jobs()
        facts = None
        with parsing(jobs, self._workers, progress) as parsed:
            if need_registry and not self._derived:
                facts = self._load_registry()
            summaries = dict(zip((p for p, _ in jobs), parsed(), strict=True))
        changed = changed_rows(outside, summaries, self._derived) if self._derived else set()
        fresh: dict[str, tuple[str, str | None]] = {
            p: (outside.now[p].workspace_id, summaries[p])
            for p in outside.fresh
            if outside.now[p].kind == "interface"
        }
        fresh |= {p: (outside.before[p].workspace_id, None) for p in outside.gone}
        some = None  # (names, their definitions now): a derived registry's rows changed
        if need_registry and facts is None:  # derived: from the summaries
            facts = self._load_registry(fresh)
        elif changed:
            some = changed, RegistryFacts.build(self.registry(fresh, names=changed)).definitions
            if not narrow(self.conn, *some):
                facts, some = self._load_registry(fresh), None
        with transaction(self.conn):
            if get_meta(self.conn, "changes") == seen:  # nobody wrote since: the plan stands
                plan = outside
            else:
                plan = plan_changes(self.conn, walk, scope, rows)
            late = [job for job in plan.jobs() if job[0] not in summaries]
            summaries.update((p, read_summary(p, kind)) for p, kind in late)
            self._touched.update(plan.fresh, plan.gone)
            self._read_at.update(_seen(walk, plan))
            write_changes(self.conn, plan, scope, rows, problems, summaries)
            lazy = sum(1 for p in plan.fresh if p not in plan.before and p not in summaries)
            self.last_report = RefreshReport(
                parsed=len(plan.jobs()) + lazy,
                reused=len(walk) - len(plan.fresh),
                removed=len(plan.gone),
                resolved_again=True,
                warnings=tuple(self._warnings),
                saved=self.path is not None,
            )
            if some is not None:  # rows of changed interfaces: those steps resolved again
                write_definitions(self.conn, some[1], names=some[0])
            if facts is not None:  # another registry: resolve everything again
                del plan, summaries, jobs, outside  # stored: a cold start needs the memory
                write_definitions(self.conn, facts.definitions)
                set_meta(self.conn, "registry_key", registry_key(self.project))
                resolve_all(self.conn, facts, self.project.workspace_ids)
            elif not self._resolve_changed(plan, summaries):
                self.last_report = replace(self.last_report, resolved_again=False)
        self.generation += 1
        return self.last_report

    def _resolve_changed(self, plan: Plan, summaries: dict[str, str]) -> bool:
        """Resolve again the steps of the files whose identity changed (new, gone, moved,
        declaring something else). True: there were some."""
        identity: dict[str, StoredFile | None] = {p: plan.before[p] for p in plan.gone}
        for path in plan.fresh:
            old, now = plan.before.get(path), plan.now[path]
            if (
                old is None
                or (old.workspace_id, old.kind) != (now.workspace_id, now.kind)
                or (
                    now.kind not in LAZY_KINDS
                    and _declared(now.kind, summaries[path]) != _declared(now.kind, old.summary)
                )
            ):
                identity[path] = old
        if identity:
            resolve_some(self.conn, identity, plan.now, summaries, self.project.workspace_ids)
        return bool(identity)

    # -- summaries on demand -------------------------------------------------------------------

    def summaries(self, paths: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The summaries of these indexed files; a lazily indexed one (a script) is parsed
        now, and an interface not yet checked whole is checked now: both are kept."""
        out: dict[str, dict[str, Any]] = {}
        missing: list[tuple[str, str]] = []
        sql = "SELECT path, kind, summary FROM files WHERE path IN (SELECT value FROM json_each(?))"
        for path, kind, summary in self.conn.execute(sql, (json.dumps(list(paths)),)):
            if summary is None or (kind == "interface" and '"checked": false' in summary):
                missing.append((path, kind))
            else:
                out[path] = json.loads(summary)
        with parsing(missing, self._workers, None, whole=True) as parse:
            parsed = dict(zip((path for path, _ in missing), parse(), strict=True))
        if parsed:
            with transaction(self.conn):
                sql = "UPDATE files SET summary = ? WHERE path = ?"
                self.conn.executemany(sql, ((text, path) for path, text in parsed.items()))
        out.update((path, json.loads(text)) for path, text in parsed.items())
        return out


def _seen(walk: Walk, plan: Plan) -> dict[str, tuple[int, ...]]:
    """The stat as walked of the files stored racy (mtime -1): what this session read."""
    racy = {p for p in plan.fresh if plan.now[p].stat[0] == -1}
    folders = {plan.now[p].folder for p in racy}
    return {
        path: found.stat
        for scan in walk.folders
        if scan.folder in folders
        for found in scan.files
        if (path := f"{scan.folder}/{found.name}") in racy
    }


def _declared(kind: str, summary: str | None) -> Any:
    """What a summary declares (an interface's problems and whether it was checked whole
    say nothing about which step it belongs to)."""
    if kind != "interface" or summary is None:
        return summary
    return json.loads(summary).get("interface")


def _stat_of(path: str) -> tuple[int, ...]:
    """(mtime_ns, size, inode) as the index keeps them; () for a path that is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    inode = st.st_ino if st.st_ino < 2**63 else st.st_ino - 2**64
    return (st.st_mtime_ns, st.st_size, inode)


def _can_write(path: Path) -> bool:
    """Whether the index file (and its WAL beside it) can be written, or else created in
    the nearest folder that exists."""
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)
