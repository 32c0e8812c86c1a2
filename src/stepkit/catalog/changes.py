"""Applying a walk to the index: which files changed, parsing them, storing them, and
resolving again what they reach. Functions over a connection, called by the session
(:mod:`stepkit.catalog.index`) inside its transaction."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sqlite3
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from stepkit.catalog.discovery import read_summaries, read_summary
from stepkit.catalog.resolution import ORDER, FileEntry, RegistryFacts, Resolver, resolve_changed
from stepkit.catalog.store import (
    StoredDefinitions,
    StoredFile,
    StoredLookups,
    count_change,
    read_definitions,
    stored_job_types,
    write_resolution,
)
from stepkit.names import STANDARD_JOB_TYPES
from stepkit.walk import FolderScan, Walk, WalkedFile

#: Below this many files to parse, one process is faster than starting a pool.
PARALLEL_THRESHOLD: Final = 1500
#: Kinds of file parsed only when a query needs them (resolution reads their names only).
LAZY_KINDS: Final = frozenset({"script"})
#: A file or folder changed this recently may change again within the same clock tick.
RACY_NS: Final = 1_000_000_000
Progress = Callable[[int, int], None]


def _digest(names: Sequence[str], *columns: Sequence[int]) -> bytes:
    """What a folder's files are: their names and stat columns, hashed."""
    h = hashlib.blake2b("\0".join(names).encode("utf-8", "surrogateescape"), digest_size=16)
    for column in columns:
        h.update(array("q", column).tobytes())
    return h.digest()


class FolderRow(NamedTuple):
    """A folder as the index keeps it (``kind`` is empty for a steps folder itself)."""

    path: str
    workspace_id: str
    kind: str
    mtime_ns: int  # the folder's own stat: -1 when racy
    inode: int
    digest: bytes  # of its files' names and stat rows


@dataclass(frozen=True, slots=True)
class Folder:
    """A walked folder as it will be stored: its row, and its files' mtimes (a racy one,
    which may change again within the clock tick, is -1: no file has it)."""

    row: FolderRow
    scan: FolderScan
    mtimes: list[int]

    @property
    def files(self) -> Iterator[WalkedFile]:
        scan = self.scan
        return map(WalkedFile, scan.names, self.mtimes, scan.sizes, scan.inodes)


def folder_row(scan: FolderScan, now: int) -> Folder:
    """The walked folder as stored (racy mtimes as -1)."""
    racy = now - RACY_NS
    mtimes = scan.mtimes
    if mtimes and max(mtimes) > racy:
        mtimes = [-1 if m > racy else m for m in mtimes]
    digest = _digest(scan.names, mtimes, scan.sizes, scan.inodes)
    mtime = scan.mtime_ns if scan.mtime_ns <= racy else -1
    row = FolderRow(scan.folder, scan.workspace_id, scan.component, mtime, scan.inode, digest)
    return Folder(row, scan, mtimes)


@contextmanager
def parsing(
    jobs: list[tuple[str, str]],
    workers: int | None,
    progress: Progress | None,
    *,
    whole: bool = False,
) -> Iterator[Callable[[], list[str]]]:
    """Summaries of every (path, kind), in order, from the function yielded: parsed in
    worker processes (started on entering, so the caller works meanwhile) when many.
    ``whole``: interface files checked whole (see :func:`read_summary`)."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(jobs) < PARALLEL_THRESHOLD:
        yield lambda: [read_summary(path, kind, whole=whole) for path, kind in jobs]
        return
    chunk = max(200, min(1000, len(jobs) // (count * 4)))
    # fork: the workers need only discovery, already imported; they never touch the
    # index connection and leave with os._exit, so it is not closed twice
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        parts = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
        futures = [pool.submit(read_summaries, part, whole) for part in parts]

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
class Plan:
    """What a walk changes: the files of the folders that differ, as stored and as found."""

    changed: list[FolderScan]
    gone_folders: list[str]
    before: dict[str, StoredFile]  # of the fresh and gone files
    now: dict[str, StoredFile]  # the fresh files as found (summaries not read yet: None)
    fresh: list[str]  # new or changed files
    gone: list[str]

    def jobs(self) -> list[tuple[str, str]]:
        """(path, kind) of the files to parse now (lazy kinds wait for a question)."""
        return [(p, self.now[p].kind) for p in self.fresh if self.now[p].kind not in LAZY_KINDS]


def scoped(scope: list[tuple[str, str]] | None) -> tuple[str, list[str]]:
    """A WHERE clause for the paths in ``scope`` (each root, and all below it)."""
    if scope is None:
        return "1", []
    clauses, args = [], []
    for root, workspace_id in scope:
        clauses.append("(workspace_id = ? AND (path = ? OR (path > ? AND path < ?)))")
        args += [workspace_id, root, f"{root}/", f"{root}0"]  # "0" follows "/"
    return " OR ".join(clauses), args


def stored_folders(
    conn: sqlite3.Connection, scope: list[tuple[str, str]] | None
) -> dict[str, FolderRow]:
    where, args = scoped(scope)
    sql = f"SELECT path, workspace_id, kind, mtime_ns, inode, digest FROM folders WHERE {where}"
    return {path: FolderRow(path, *rest) for path, *rest in conn.execute(sql, args)}


def stored_problems(
    conn: sqlite3.Connection, scope: list[tuple[str, str]] | None
) -> list[tuple[Any, ...]]:
    where, args = scoped(scope)
    sql = f"SELECT path, workspace_id, message FROM walk_problems WHERE {where}"
    return sorted(conn.execute(sql, args))


def plan_changes(
    conn: sqlite3.Connection,
    walk: Walk,
    scope: list[tuple[str, str]] | None,
    rows: dict[str, Folder],
) -> Plan:
    """What ``walk`` (of the folders ``scope``) changes in the index, file by file: the
    stored stat rows of the folders that differ are compared with the walked ones (a folder
    of thousands, one file edited); every file of a new folder is new."""
    stored = stored_folders(conn, scope)
    changed = [s for s in walk.folders if stored.get(s.folder) != rows[s.folder].row]
    gone_folders = [f for f in stored if f not in rows]
    folders = json.dumps([*(s.folder for s in changed if s.folder in stored), *gone_folders])
    known: dict[str, tuple[StoredFile, bool]] = {}  # path → (stat row, has a summary)
    for path, folder, ws, kind, mtime_ns, size, inode, parsed in conn.execute(
        "SELECT path, folder, workspace_id, kind, mtime_ns, size, inode, summary IS NOT NULL "
        "FROM files WHERE folder IN (SELECT value FROM json_each(?))",
        (folders,),
    ):
        known[path] = StoredFile(path, folder, ws, kind, (mtime_ns, size, inode)), bool(parsed)
    now: dict[str, StoredFile] = {}
    for scan in changed:
        for f in rows[scan.folder].files:
            path = f"{scan.folder}/{f.name}"
            found = StoredFile(path, scan.folder, scan.workspace_id, scan.component, f.stat)
            old, parsed = known.pop(path, (None, False))
            if found != old or f.mtime_ns == -1 or not (parsed or found.kind in LAZY_KINDS):
                now[path] = found
    gone = sorted(known)
    before: dict[str, StoredFile] = {}
    for path, folder, ws, kind, mtime_ns, size, inode, summary in conn.execute(  # (stored)
        "SELECT path, folder, workspace_id, kind, mtime_ns, size, inode, summary FROM files "
        "WHERE path IN (SELECT value FROM json_each(?))",
        (json.dumps([*(p for p, f in now.items() if f.folder in stored), *gone]),),
    ):
        before[path] = StoredFile(path, folder, ws, kind, (mtime_ns, size, inode), summary)
    return Plan(changed, gone_folders, before, now, sorted(now), gone)


def write_changes(
    conn: sqlite3.Connection,
    plan: Plan,
    scope: list[tuple[str, str]] | None,
    rows: dict[str, Folder],
    problems: list[tuple[Any, ...]],
    summaries: dict[str, str],
) -> None:
    """Store the files and folders as found (in the caller's transaction), counted."""
    count_change(conn)
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
        (rows[s.folder].row for s in plan.changed),
    )
    where, args = scoped(scope)
    conn.execute(f"DELETE FROM walk_problems WHERE {where}", args)
    conn.executemany("INSERT INTO walk_problems VALUES (?, ?, ?)", problems)


# -- resolution --------------------------------------------------------------------------------


def _entries(conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> Iterator[FileEntry]:
    for path, workspace_id, kind, summary in conn.execute(sql, args):
        yield FileEntry(path, workspace_id, kind, json.loads(summary) if summary else None)


def resolve_all(conn: sqlite3.Connection, facts: RegistryFacts, order: Sequence[str]) -> None:
    """Resolve every indexed file and store the result in place of the previous one."""
    resolver = Resolver(facts, order)
    kinds = " ".join(f"WHEN '{kind}' THEN {i}" for i, kind in enumerate(ORDER))
    spaces = " ".join(f"WHEN ? THEN {i}" for i, _ in enumerate(order))
    sql = (  # in the order resolution takes them: none is held once resolved
        "SELECT path, workspace_id, kind, summary FROM files ORDER BY "
        f"CASE kind {kinds} ELSE 99 END, CASE workspace_id {spaces} ELSE 99 END, path"
    )
    for table in ("placements", "listing", "links", "unmatched"):
        conn.execute(f"DELETE FROM {table}")

    def store_links(batch: list[tuple[str, str]]) -> None:  # as they come: 150,000 of them
        conn.executemany("INSERT OR IGNORE INTO links VALUES (?, ?)", sorted(batch))

    result = resolver.run(_entries(conn, sql, order), ordered=True, links=store_links)
    write_resolution(
        conn,
        result,
        paths=None,
        names=None,
        definitions=facts.definitions,
        rank={ws: i for i, ws in enumerate(order)},
    )


def resolve_some(
    conn: sqlite3.Connection,
    old: dict[str, StoredFile | None],
    now_files: dict[str, StoredFile],
    summaries: dict[str, str],
    order: Sequence[str],
) -> None:
    """Resolve again the steps the changed files ``old`` reach (all, when too many)."""
    extra = [j for j in stored_job_types(conn) if j not in STANDARD_JOB_TYPES]
    definitions = StoredDefinitions(conn)  # asked a name at a time: the change reaches few
    facts = RegistryFacts(definitions, (*STANDARD_JOB_TYPES, *extra), StoredLookups(conn))
    resolver = Resolver(facts, order)

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
        return [p for (p,) in conn.execute("SELECT path FROM links WHERE key = ?", (key,))]

    def entry(path: str) -> FileEntry:
        sql = "SELECT path, workspace_id, kind, summary FROM files WHERE path = ?"
        return next(_entries(conn, sql, (path,)))

    total = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    partial = resolve_changed(
        resolver, old=before, current=current, linked=linked, entry=entry, total=total
    )
    if partial is None:  # the change reaches too much: every definition read at once
        resolve_all(conn, RegistryFacts.of(read_definitions(conn, origins=False)), order)
        return
    for path, was in before.items():
        if was is not None:
            conn.executemany(
                "DELETE FROM links WHERE key = ? AND path = ?",
                ((k, path) for k in resolver.file_keys(was)),
            )
    conn.executemany(
        "INSERT OR IGNORE INTO links VALUES (?, ?)",
        ((k, p) for k, p in partial.result.links if p in current),
    )
    write_resolution(
        conn,
        partial.result,
        paths=partial.paths,
        names=partial.names,
        definitions=facts.definitions,
        rank={ws: i for i, ws in enumerate(order)},
    )
