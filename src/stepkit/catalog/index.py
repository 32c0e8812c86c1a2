"""The index session: keeps the SQLite index (:mod:`stepkit.catalog.store`) in line with
the workspaces, asking the file system only what a question needs.

- :meth:`IndexSession.refresh` walks every workspace (a ``stat`` per file): a folder whose
  files' stat rows hash as stored is reused whole; the others are compared file by file.
- :meth:`IndexSession.check_folders` stats the folders only (an entry added, removed or
  renamed changes its folder's own stat), :meth:`IndexSession.check_files` the files a
  question is about; either rescans just the folders that changed.

Either way the changed files are parsed (many: in one process per core), and steps are
resolved again only where what a file declares changed — all of it in one transaction,
so two processes refreshing at once take turns and the second finds little left to do.
A file written within :data:`RACY_NS` of being looked at is stored with a stat no file
has, so the next look reads it again (an edit in the same clock tick is never missed).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, TypeVar

from stepkit.catalog.discovery import read_summaries, read_summary
from stepkit.catalog.records import RefreshReport
from stepkit.catalog.resolution import ORDER, FileEntry, RegistryFacts, Resolver, resolve_changed
from stepkit.catalog.store import (
    get_meta,
    index_path,
    open_index,
    read_definitions,
    remove_index,
    set_meta,
    write_definitions,
    write_resolution,
)
from stepkit.errors import CorruptIndexError
from stepkit.project import RawWalk, scan_folder, scan_project, scan_workspace
from stepkit.registry.layering import Registry
from stepkit.sqlite import transaction

if TYPE_CHECKING:
    from pathlib import Path

    from stepkit.project import FolderScan, Project

#: Below this many files to parse, one process is faster than starting a pool.
PARALLEL_THRESHOLD: Final = 1500
#: Kinds of file parsed only when a query needs them (resolution reads their names only).
LAZY_KINDS: Final = frozenset({"script"})
#: A file or folder changed this recently may change again within the same clock tick.
RACY_NS: Final = 1_000_000_000
Progress = Callable[[int, int], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file as the index has it."""

    path: str
    folder: str
    workspace_id: str
    kind: str
    stat: tuple[int, int, int]  # mtime_ns, size, inode (mtime -1: racy, read it again)
    summary: str | None


def _digest(names: Sequence[str], stats: Sequence[int]) -> bytes:
    """What a folder's files are: their names and stat rows, hashed."""
    h = hashlib.blake2b("\0".join(names).encode("utf-8", "surrogateescape"), digest_size=16)
    h.update(array("q", stats).tobytes())
    return h.digest()


def _folder_row(scan: FolderScan, now: int) -> tuple[Any, ...]:
    """(path, workspace, kind, mtime, inode, digest, file stats) as stored: a racy mtime
    is stored as -1, which no file has."""
    stats = scan.stats
    if stats and max(stats[0::3]) > now - RACY_NS:
        stats = array(
            "q", (-1 if i % 3 == 0 and v > now - RACY_NS else v for i, v in enumerate(stats))
        )
    mtime = scan.mtime_ns if scan.mtime_ns <= now - RACY_NS else -1
    digest = _digest(scan.names, stats)
    return (scan.folder, scan.workspace_id, scan.component, mtime, scan.inode, digest, stats)


def _stat_row(path: Path | None) -> list[Any]:
    if path is None:
        return [None]
    try:
        st = path.stat()
    except OSError:
        return [str(path), None]
    return [str(path), st.st_mtime_ns, st.st_size, st.st_ino]


def registry_key(project: Project) -> list[Any]:
    """What resolution depends on besides the files: the workspaces and their registries."""
    return [[ws.id, str(ws.steps_dir), *_stat_row(ws.registry_file)] for ws in project.workspaces]


@contextmanager
def _parsing(
    jobs: list[tuple[str, str]], workers: int | None, progress: Progress | None
) -> Iterator[Callable[[], list[str]]]:
    """Summaries of every (path, kind), in order, from the function yielded: parsed in
    worker processes (started on entering, so the caller works meanwhile) when many."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(jobs) < PARALLEL_THRESHOLD:
        yield lambda: [read_summary(path, kind) for path, kind in jobs]
        return
    import multiprocessing  # only a large parse needs a pool (a cold start)
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(200, min(1000, len(jobs) // (count * 4)))
    # fork: the workers need only discovery, already imported; they never touch the
    # index connection and leave with os._exit, so it is not closed twice
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        parts = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
        futures = [pool.submit(read_summaries, part) for part in parts]

        def gather() -> list[str]:
            out: list[str] = []
            for future in futures:
                out += future.result()
                if progress is not None:
                    progress(len(out), len(jobs))
            return out

        try:
            yield gather
        except BaseException:  # an error (or ^C) meanwhile: parse no further
            for future in futures:
                future.cancel()
            raise


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a walk changes: the files of the folders that differ, as stored and as found."""

    changed: list[FolderScan]
    gone_folders: list[str]
    before: dict[str, StoredFile]
    now: dict[str, StoredFile]  # summaries not read yet (None)
    fresh: list[str]  # new or changed files
    gone: list[str]

    def jobs(self) -> list[tuple[str, str]]:
        """(path, kind) of the files to parse now (lazy kinds wait for a question)."""
        return [(p, self.now[p].kind) for p in self.fresh if self.now[p].kind not in LAZY_KINDS]


class IndexSession:
    """One connection to a project's index and the freshness it has established."""

    def __init__(
        self,
        project: Project,
        *,
        registry: Registry | None = None,
        persist: bool = True,
        workers: int | None = None,
    ) -> None:
        self.project = project
        self.path = index_path(project) if persist else None
        self.generation = 0  # goes up whenever the index changes: views drop what they built
        self._walked = False  # every workspace walked in this session
        self.last_report = RefreshReport()
        self._registry = registry
        self._given: RegistryFacts | None = None
        self._workers = workers
        self._warnings: list[str] = []
        self._touched: set[str] = set()  # files the last change added, changed or removed
        self._rank = {ws: i for i, ws in enumerate(project.workspace_ids)}
        self.conn = self._connect()

    # -- the file ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            return open_index(":memory:")
        try:
            return open_index(self.path)
        except CorruptIndexError as exc:
            self._warn(f"{exc}; rebuilding it")
        remove_index(self.path)
        return open_index(self.path)

    def _warn(self, message: str) -> None:
        from stepkit.observability import get_logger

        self._warnings.append(message)  # the CLI prints these as ``warning: …``
        get_logger("stepkit.catalog").info("catalog.index_rebuilt", reason=message)

    def recover(self, exc: sqlite3.DatabaseError) -> RefreshReport:
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
                raise  # another process held the index longer than the busy timeout
            self.recover(exc)
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
        try:
            empty = self.conn.execute("SELECT 1 FROM folders LIMIT 1").fetchone() is None
            return self.refresh(progress=progress) if empty else self.check_folders()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            return self.recover(exc)

    def refresh(self, *, progress: Progress | None = None) -> RefreshReport:
        """Walk every workspace and bring the index up to date."""
        report = self._sync(scan_project(self.project), None, progress)
        self._walked = True
        return report

    def ensure_walked(self) -> None:
        """Walk every workspace, once per session (what ``list``, ``search``, ``check`` need)."""
        if not self._walked:
            self.refresh()

    def check_folders(self) -> RefreshReport:
        """Stat every indexed folder (and the registries); rescan the folders that changed."""
        if get_meta(self.conn, "registry_key") != self._wanted_registry_key():
            return self.refresh()
        roots: dict[str, tuple[str, str]] = {}
        known = set()
        for path, workspace_id, kind, mtime_ns, inode in self.conn.execute(
            "SELECT path, workspace_id, kind, mtime_ns, inode FROM folders"
        ):
            known.add(path)
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None or (st.st_mtime_ns, _signed(st.st_ino)) != (mtime_ns, inode):
                roots[path] = (workspace_id, kind)
        for ws in self.project.workspaces:
            if str(ws.steps_dir) not in known:
                roots[str(ws.steps_dir)] = (ws.id, "")
        return self._rescan(roots)

    def check_files(self, paths: Iterable[str]) -> bool:
        """Stat these indexed files; rescan the folders of those that changed. True: the
        index changed."""
        roots: dict[str, tuple[str, str]] = {}
        wanted = list(dict.fromkeys(paths))
        for i in range(0, len(wanted), 500):
            marks = ",".join("?" * len(wanted[i : i + 500]))
            for path, folder, workspace_id, kind, mtime_ns, size, inode in self.conn.execute(
                "SELECT path, folder, workspace_id, kind, mtime_ns, size, inode FROM files "
                f"WHERE path IN ({marks})",
                wanted[i : i + 500],
            ):
                try:
                    st = os.stat(path)
                except OSError:
                    st = None
                if st is None or (st.st_mtime_ns, st.st_size, _signed(st.st_ino)) != (
                    mtime_ns,
                    size,
                    inode,
                ):
                    roots[folder] = (workspace_id, kind)
        before = self.generation
        self._rescan(roots)
        return self.generation != before

    def apply_changes(self, paths: Iterable[Path]) -> int:
        """Bring the index up to date for these changed paths (watch mode): their folders
        are rescanned, not the tree. Returns how many files changed."""
        roots: dict[str, tuple[str, str]] = {}
        given = [str(p) for p in paths]
        for path in given:
            where = self._place(path)
            if where is not None:
                roots[where[0]] = where[1:]
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
                return folder, found[0], found[1]
        return None

    def _rescan(self, roots: dict[str, tuple[str, str]]) -> RefreshReport:
        if not roots:
            return RefreshReport(warnings=tuple(self._warnings))
        top = [r for r in roots if not any(r.startswith(f"{o}/") for o in roots if o != r)]
        walk = RawWalk()
        for root in sorted(top):
            workspace_id, kind = roots[root]
            if kind:
                if os.path.isdir(root):
                    scan_folder(root, workspace_id, kind, walk)
            else:
                scan_workspace(self.project.workspace(workspace_id), walk)
        return self._sync(walk, [(r, roots[r][0]) for r in top], None)

    # -- the registry ------------------------------------------------------------------------

    def _wanted_registry_key(self) -> Any:
        """The registry files' stat (or a digest of the registry the caller gave)."""
        key = registry_key(self.project)
        if self._registry is None:
            return key
        if self._given is None:
            self._given = self._facts_of(self._registry)
        rows = sorted((n, d.workspace_id, d.as_dict()) for n, d in self._given.definitions.items())
        digest = hashlib.blake2b(json.dumps(rows).encode(), digest_size=16).hexdigest()
        return [key, digest]

    @staticmethod
    def _facts_of(registry: Registry) -> RegistryFacts:
        return RegistryFacts.build([(ws, registry.view(ws)) for ws in registry.workspace_ids])

    def _load_registry(self) -> RegistryFacts:
        """Read outside any transaction: the registry caches its parse in this index."""
        if self._given is not None:
            return self._given
        return self._facts_of(Registry.load(self.project))

    # -- one change ----------------------------------------------------------------------------

    def _sync(
        self, walk: RawWalk, scope: list[tuple[str, str]] | None, progress: Progress | None
    ) -> RefreshReport:
        """Make the index hold ``walk``, a fresh walk of the folders ``scope`` (root,
        workspace) and all below them (None: every workspace)."""
        need_registry = get_meta(self.conn, "registry_key") != self._wanted_registry_key()
        rows = {scan.folder: _folder_row(scan, time.time_ns()) for scan in walk.folders}
        problems = sorted((str(p.path), p.workspace_id, p.message) for p in walk.problems)
        if (
            not need_registry
            and self._stored_folders(scope) == {f: r[1:6] for f, r in rows.items()}
            and problems == self._stored_problems(scope)
        ):
            self.last_report = RefreshReport(reused=len(walk), warnings=tuple(self._warnings))
            return self.last_report
        # parsed outside the transaction (a cold start parses for seconds) with the
        # registry read meanwhile; planned again inside, where what another process wrote
        # in between is seen
        jobs = self._plan(walk, scope, rows).jobs()
        facts = None
        with _parsing(jobs, self._workers, progress) as parsed:
            if need_registry:
                facts = self._load_registry()
            summaries = dict(zip((p for p, _ in jobs), parsed(), strict=True))
        with transaction(self.conn):
            plan = self._plan(walk, scope, rows)
            late = [job for job in plan.jobs() if job[0] not in summaries]
            summaries.update((p, read_summary(p, kind)) for p, kind in late)
            self._write(plan, scope, rows, problems, summaries)
            lazy = sum(1 for p in plan.fresh if p not in plan.before and p not in summaries)
            self.last_report = RefreshReport(
                parsed=len(plan.jobs()) + lazy,
                reused=len(walk) - len(plan.fresh),
                removed=len(plan.gone),
                resolved_again=True,
                warnings=tuple(self._warnings),
                saved=self.path is not None,
            )
            if facts is not None:  # another registry: resolve everything again
                del plan, summaries, jobs  # stored: a cold start needs the memory
                write_definitions(self.conn, facts.definitions)
                set_meta(self.conn, "registry_key", self._wanted_registry_key())
                self._resolve_all(facts)
            elif not self._resolve_changed(plan, summaries):
                self.last_report = replace(self.last_report, resolved_again=False)
        self.generation += 1
        return self.last_report

    @staticmethod
    def _scoped(scope: list[tuple[str, str]] | None) -> tuple[str, list[str]]:
        """A WHERE clause for the paths in ``scope`` (each root, and all below it)."""
        if scope is None:
            return "1", []
        clauses, args = [], []
        for root, workspace_id in scope:
            clauses.append("(workspace_id = ? AND (path = ? OR (path > ? AND path < ?)))")
            args += [workspace_id, root, f"{root}/", f"{root}0"]  # "0" follows "/"
        return " OR ".join(clauses), args

    def _stored_folders(self, scope: list[tuple[str, str]] | None) -> dict[str, tuple[Any, ...]]:
        where, args = self._scoped(scope)
        sql = f"SELECT path, workspace_id, kind, mtime_ns, inode, digest FROM folders WHERE {where}"
        return {row[0]: row[1:] for row in self.conn.execute(sql, args)}

    def _stored_problems(self, scope: list[tuple[str, str]] | None) -> list[tuple[Any, ...]]:
        where, args = self._scoped(scope)
        sql = f"SELECT path, workspace_id, message FROM walk_problems WHERE {where}"
        return sorted(self.conn.execute(sql, args))

    def _plan(
        self, walk: RawWalk, scope: list[tuple[str, str]] | None, rows: dict[str, tuple[Any, ...]]
    ) -> _Plan:
        stored = self._stored_folders(scope)
        changed = [s for s in walk.folders if stored.get(s.folder) != rows[s.folder][1:6]]
        gone_folders = [f for f in stored if f not in rows]
        before: dict[str, StoredFile] = {}
        for folder in [*(s.folder for s in changed), *gone_folders]:
            for path, ws, kind, mtime_ns, size, inode, summary in self.conn.execute(
                "SELECT path, workspace_id, kind, mtime_ns, size, inode, summary FROM files "
                "WHERE folder = ?",
                (folder,),
            ):
                before[path] = StoredFile(path, folder, ws, kind, (mtime_ns, size, inode), summary)
        now: dict[str, StoredFile] = {}
        for scan in changed:
            stats = rows[scan.folder][6]
            for i, name in enumerate(scan.names):
                path, stat = f"{scan.folder}/{name}", tuple(stats[3 * i : 3 * i + 3])
                now[path] = StoredFile(
                    path, scan.folder, scan.workspace_id, scan.component, stat, None
                )
        fresh = [
            p
            for p, f in now.items()
            if (old := before.get(p)) is None
            or (old.workspace_id, old.kind, old.stat) != (f.workspace_id, f.kind, f.stat)
            or f.stat[0] == -1
            or (old.summary is None and f.kind not in LAZY_KINDS)
        ]
        return _Plan(changed, gone_folders, before, now, fresh, [p for p in before if p not in now])

    def _write(
        self,
        plan: _Plan,
        scope: list[tuple[str, str]] | None,
        rows: dict[str, tuple[Any, ...]],
        problems: list[tuple[Any, ...]],
        summaries: dict[str, str],
    ) -> None:
        """Store the files and folders as found (in the caller's transaction)."""
        conn = self.conn
        self._touched.update(plan.fresh, plan.gone)
        conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in plan.gone))
        conn.executemany(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (p, f.folder, f.workspace_id, f.kind, *f.stat, summaries.get(p))
                for p in plan.fresh
                for f in (plan.now[p],)
            ),
        )
        conn.executemany("DELETE FROM folders WHERE path = ?", ((f,) for f in plan.gone_folders))
        conn.executemany(
            "INSERT OR REPLACE INTO folders VALUES (?, ?, ?, ?, ?, ?)",
            (rows[s.folder][:6] for s in plan.changed),
        )
        where, args = self._scoped(scope)
        conn.execute(f"DELETE FROM walk_problems WHERE {where}", args)
        conn.executemany("INSERT INTO walk_problems VALUES (?, ?, ?)", problems)

    def _resolve_changed(self, plan: _Plan, summaries: dict[str, str]) -> bool:
        """Resolve again the steps of the files whose identity changed (new, gone, moved,
        declaring something else). True: there were some."""
        identity: dict[str, StoredFile | None] = {p: plan.before[p] for p in plan.gone}
        for path in plan.fresh:
            old, now = plan.before.get(path), plan.now[path]
            moved = old is None or (old.workspace_id, old.kind) != (now.workspace_id, now.kind)
            declares = now.kind not in LAZY_KINDS and old is not None
            if moved or (declares and summaries[path] != old.summary):  # type: ignore[union-attr]
                identity[path] = old
        if identity:
            self._resolve_some(identity, plan.now, summaries)
        return bool(identity)

    # -- resolution ----------------------------------------------------------------------------

    def _entries(self, sql: str, args: Sequence[Any] = ()) -> Iterator[FileEntry]:
        for path, workspace_id, kind, summary in self.conn.execute(sql, args):
            yield FileEntry(path, workspace_id, kind, json.loads(summary) if summary else None)

    def _resolve_all(self, facts: RegistryFacts) -> None:
        resolver = Resolver(facts, self.project.workspace_ids)
        kinds = " ".join(f"WHEN '{kind}' THEN {i}" for i, kind in enumerate(ORDER))
        spaces = " ".join(f"WHEN ? THEN {i}" for i, _ in enumerate(self.project.workspace_ids))
        sql = (  # in the order resolution takes them: none is held once resolved
            "SELECT path, workspace_id, kind, summary FROM files ORDER BY "
            f"CASE kind {kinds} ELSE 99 END, CASE workspace_id {spaces} ELSE 99 END, path"
        )
        result = resolver.run(self._entries(sql, self.project.workspace_ids), ordered=True)
        write_resolution(
            self.conn,
            result,
            paths=None,
            names=None,
            definitions=facts.definitions,
            rank=self._rank,
        )

    def _resolve_some(
        self,
        old: dict[str, StoredFile | None],
        now_files: dict[str, StoredFile],
        summaries: dict[str, str],
    ) -> None:
        facts = RegistryFacts.of(read_definitions(self.conn))
        resolver = Resolver(facts, self.project.workspace_ids)

        def entry_of(stored: StoredFile) -> FileEntry:
            summary = json.loads(stored.summary) if stored.summary else None
            return FileEntry(stored.path, stored.workspace_id, stored.kind, summary)

        before = {p: entry_of(s) if s is not None else None for p, s in old.items()}
        current = {}
        for path in old:
            if path in now_files:
                f, text = now_files[path], summaries.get(path)
                summary = json.loads(text) if text else None
                current[path] = FileEntry(path, f.workspace_id, f.kind, summary)

        def linked(key: str) -> list[str]:
            return [p for (p,) in self.conn.execute("SELECT path FROM links WHERE key = ?", (key,))]

        def entry(path: str) -> FileEntry:
            sql = "SELECT path, workspace_id, kind, summary FROM files WHERE path = ?"
            return next(self._entries(sql, (path,)))

        total = self.conn.execute("SELECT count(*) FROM files").fetchone()[0]
        partial = resolve_changed(
            resolver, old=before, current=current, linked=linked, entry=entry, total=total
        )
        if partial is None:
            self._resolve_all(facts)
            return
        for path, was in before.items():
            if was is not None:
                self.conn.executemany(
                    "DELETE FROM links WHERE key = ? AND path = ?",
                    ((k, path) for k in resolver.file_keys(was)),
                )
        self.conn.executemany(
            "INSERT OR IGNORE INTO links VALUES (?, ?)",
            ((k, p) for k, p in partial.result.links if p in current),
        )
        write_resolution(
            self.conn,
            partial.result,
            paths=partial.paths,
            names=partial.names,
            definitions=facts.definitions,
            rank=self._rank,
        )

    # -- summaries on demand -------------------------------------------------------------------

    def summaries(self, paths: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The summaries of these indexed files; a lazily indexed one (a script) is parsed
        now, and kept."""
        wanted = list(dict.fromkeys(paths))
        out: dict[str, dict[str, Any]] = {}
        missing: list[tuple[str, str]] = []
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            sql = (
                f"SELECT path, kind, summary FROM files WHERE path IN ({','.join('?' * len(part))})"
            )
            for path, kind, summary in self.conn.execute(sql, part):
                if summary is None:
                    missing.append((path, kind))
                else:
                    out[path] = json.loads(summary)
        if missing:
            with _parsing(missing, self._workers, None) as parse:
                parsed = parse()
            with transaction(self.conn):
                self.conn.executemany(
                    "UPDATE files SET summary = ? WHERE path = ?",
                    ((text, path) for (path, _), text in zip(missing, parsed, strict=True)),
                )
            out.update(
                (path, json.loads(text)) for (path, _), text in zip(missing, parsed, strict=True)
            )
        return out


def _signed(inode: int) -> int:
    return inode if inode < 2**63 else inode - 2**64
