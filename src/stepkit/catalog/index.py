"""Keeping the catalog index current: parse what changed, resolve only when needed.

A file whose (mtime, size, inode) is unchanged keeps its summary. A changed file is
parsed again; when its new summary equals the old one (the usual edit: code, not the
step's identity) the resolved steps stay as they are and only the stat row changes.
Otherwise — added, removed or re-identified files, another registry — steps are resolved
again. Parsing many files uses every core.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.catalog.discovery import encode_summary, read_summaries, read_summary
from stepkit.catalog.files import FileTable, FolderRows
from stepkit.catalog.incremental import Resolution, resolve_all, resolve_changed
from stepkit.catalog.resolution import ORDER, FileEntry, RegistryFacts, registry_stems
from stepkit.catalog.store import IndexData

if TYPE_CHECKING:
    from stepkit.project import Project, RawWalk

#: Below this many files to parse, one process is faster than starting a pool.
PARALLEL_THRESHOLD: Final = 1500
#: Components parsed only when a query needs them (resolution does not).
LAZY_COMPONENTS: Final = frozenset({"script"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one refresh did: files parsed (new or changed), reused, removed; warnings."""

    parsed: int
    reused: int
    removed: int
    resolved_again: bool
    warnings: tuple[str, ...]
    saved: bool


@dataclass(frozen=True, slots=True)
class RefreshCounts:
    parsed: int
    reused: int
    removed: int
    resolved_again: bool
    changed: bool  # the index differs from the one loaded (so it should be saved)


# -- keys -------------------------------------------------------------------------------------


def _stat_key(path: Path | None) -> list[Any]:
    if path is None:
        return [None]
    try:
        st = path.stat()
    except OSError:
        return [str(path), None]
    return [str(path), st.st_mtime_ns, st.st_size, st.st_ino]


def registry_key(project: Project) -> list[Any]:
    """What resolution depends on besides the files: the workspaces and their registries."""
    return [[ws.id, str(ws.steps_dir), *_stat_key(ws.registry_file)] for ws in project.workspaces]


# -- parsing ----------------------------------------------------------------------------------


@contextmanager
def parsing(
    jobs: list[tuple[str, str]], *, workers: int | None = None
) -> Iterator[Iterator[bytes]]:
    """Encoded summaries of every (path, component), in order, as they come: in worker
    processes (started on entering) when many, else here, one at a time as they are asked
    for. The parent receives bytes only, never the syntax trees."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(jobs) < PARALLEL_THRESHOLD:
        yield (encode_summary(read_summary(path, component)) for path, component in jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(200, min(1000, len(jobs) // (count * 4)))  # small: less memory in flight
    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    # fork: the workers need nothing but this module, already imported (and they inherit
    # the paused garbage collector, which halves the cost of building syntax trees)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        futures = [pool.submit(read_summaries, c) for c in chunks]
        del chunks, jobs  # sent: the workers have their own copies

        def results() -> Iterator[bytes]:
            for i, future in enumerate(futures):
                yield from future.result()
                futures[i] = None  # type: ignore[call-overload]  # taken: let it go

        try:
            yield results()
        except BaseException:  # an error (or ^C) while resolving: parse no further
            for future in futures:
                if future is not None:
                    future.cancel()
            raise


def parse_files(
    jobs: list[tuple[str, str]],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[bytes]:
    """:func:`parsing`, all of it; ``meanwhile`` runs in this process while the workers
    parse (e.g. reading the registry)."""
    with parsing(jobs, workers=workers) as results:
        if meanwhile is not None:
            meanwhile()
        out: list[bytes] = []
        for summary in results:
            out.append(summary)
            if progress is not None and len(out) % 500 == 0:
                progress(len(out), len(jobs))
    return out


# -- refresh ----------------------------------------------------------------------------------


def _entry(path: str, row: list[Any], summaries: Mapping[str, bytes]) -> FileEntry:
    """The file as resolution sees it: its summary only while it is current."""
    found = summaries.get(path)
    summary = found if found is not None and zlib.crc32(found) == row[5] else None
    return FileEntry(path, row[0], row[1], summary)


def _row(files: FileTable, path: str) -> list[Any]:
    row = files.get(path)
    if row is None:
        raise KeyError(path)
    return row


def resolved_index(
    project: Project,
    facts: RegistryFacts,
    files: FileTable,
    summaries: MutableMapping[str, bytes],
    *,
    walk_problems: list[list[Any]],
    registry_key: list[Any],
    snapshot: dict[str, Any],
    previous: IndexData | None = None,
    changed: Iterable[str] = (),
) -> IndexData:
    """A new index for these files and summaries: steps resolved, list rows built.

    With ``previous`` (resolved for the same registry) and the ``changed`` paths, only the
    steps those changes can reach are resolved again (see :mod:`stepkit.catalog.incremental`).
    """
    data = IndexData(
        files=files,
        walk_problems=walk_problems,
        registry_key=registry_key,
        project=snapshot,
    )
    data.with_sections(summaries=summaries)
    order = project.workspace_ids
    result = None
    if previous is not None and "links" in previous.sections:
        result = _resolve_changed(previous, files, summaries, changed, facts, order)
    if result is None:
        stems = registry_stems(facts)
        entries = (_entry(path, row, summaries) for path, row in files.items())
        result = resolve_all(entries, facts, order, stems)
        data.with_sections(registry={"registry": dict(facts.definitions), "stems": stems})
    else:
        assert previous is not None  # a partial resolution starts from one
        data.sections["registry"] = previous.sections["registry"]
    data.with_sections(resolved=result.resolved, links=result.links, listing=result.listing)
    return data


def _resolve_changed(
    previous: IndexData,
    files: FileTable,
    summaries: MutableMapping[str, bytes],
    changed: Iterable[str],
    facts: RegistryFacts,
    order: tuple[str, ...],
) -> Resolution | None:
    before_files, before_summaries = previous.files, previous.summaries
    old: dict[str, FileEntry | None] = {}
    current: dict[str, FileEntry] = {}
    for path in changed:
        row = before_files.get(path)
        was = _entry(path, row, before_summaries) if row is not None else None
        row = files.get(path)
        now = _entry(path, row, summaries) if row is not None else None
        if was is not None and now is not None and was == now:
            continue
        old[path] = was
        if now is not None:
            current[path] = now
    return resolve_changed(
        previous=Resolution(previous.resolved, previous.links, previous.listing),
        old=old,
        current=current,
        entry=lambda path: _entry(path, _row(files, path), summaries),
        registry=facts,
        workspace_order=order,
        by_stem=previous.stems,
        total=len(files),
    )


def refresh(
    project: Project,
    load_registry: Callable[[], RegistryFacts],
    *,
    previous: IndexData | None,
    walk: RawWalk,
    walk_problems: list[list[Any]],
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[IndexData, RegistryFacts | None, RefreshCounts]:
    """The index for the walked folders: a folder found as the index has it is kept whole,
    a file whose stat data is unchanged keeps its row, the rest are parsed; steps are
    resolved again only when what resolution reads changed.

    Returns (index, the registry digest if it was read, counts).
    """
    old = previous.files if previous is not None else FileTable()
    files = FileTable()
    jobs: list[tuple[str, str]] = []
    targets: list[tuple[FolderRows, int]] = []  # where each job's hash goes
    lazy = reused = 0
    fresh: list[str] = []  # paths not reused: new or changed
    for scan in walk.folders:
        before = old.folders.get(scan.folder)
        if before is not None and before.matches(scan):
            files.folders[scan.folder] = before
            reused += len(scan.names)
            continue
        rows = FolderRows.unparsed(scan)
        files.folders[scan.folder] = rows
        comparable = before is not None and (before.workspace_id, before.component) == (
            scan.workspace_id,
            scan.component,
        )
        for i, name in enumerate(scan.names):
            j = before.position(name) if comparable and before is not None else None
            if j is not None and before is not None and before.same_stat(j, scan, i):
                rows.hashes[i] = before.hashes[j]
                reused += 1
                continue
            path = rows.path_of(i)  # kept: resolution uses the same string
            fresh.append(path)
            if scan.component in LAZY_COMPONENTS:
                lazy += j is None  # a new script is a new file; a changed one is not
            else:
                jobs.append((path, scan.component))
                targets.append((rows, i))
    key = registry_key(project)
    if previous is None:  # a cold start: each file is resolved as its summary arrives
        jobs_count = len(jobs)
        data, facts = _cold_index(
            project, load_registry, files, jobs, targets, walk_problems, key, workers, progress
        )
        return data, facts, RefreshCounts(jobs_count + lazy, 0, 0, True, True)
    registry_reused = previous.registry_key == key
    loaded: list[RegistryFacts] = []

    def load() -> None:  # the registry is read while the workers parse
        if not registry_reused:
            loaded.append(load_registry())

    parsed = parse_files(jobs, workers=workers, progress=progress, meanwhile=load) if jobs else []
    if not jobs:
        load()
    gone = _gone(old, files)
    removed = len(gone)
    same_identity = True
    for (path, _component), (rows, i), summary in zip(jobs, targets, parsed, strict=True):
        digest = zlib.crc32(summary)
        rows.hashes[i] = digest
        same_identity = same_identity and old.hash_of(path) == digest
    changed = bool(jobs) or len(fresh) > 0 or removed > 0 or previous is None
    if (
        previous is not None
        and same_identity
        and not lazy
        and not removed
        and registry_reused
        and previous.walk_problems == walk_problems
    ):
        # nothing resolution reads has changed: keep the resolved sections as they are
        data = IndexData(
            files=files,
            walk_problems=walk_problems,
            registry_key=key,
            project=previous.project,
            sections=dict(previous.sections),
        )
        return data, None, RefreshCounts(len(jobs), reused, removed, False, changed)
    if loaded:
        facts = loaded[0]
    else:
        assert previous is not None  # registry_reused implies an index was loaded
        facts = RegistryFacts.from_rows(previous.registry)
    summaries: MutableMapping[str, bytes] = copy(previous.summaries) if previous else {}
    for (path, _component), summary in zip(jobs, parsed, strict=True):
        summaries[path] = summary
    for path in gone:
        summaries.pop(path, None)
    parsed_count = len(jobs) + lazy
    changed_paths = [*fresh, *gone] if registry_reused else []
    del jobs, targets, parsed, fresh  # 50,000 tuples a cold start's resolution can do without
    data = resolved_index(
        project,
        facts,
        files,
        summaries,
        walk_problems=walk_problems,
        registry_key=key,
        snapshot=previous.project if previous is not None else {},
        previous=previous if registry_reused else None,
        changed=changed_paths,
    )
    return data, facts, RefreshCounts(parsed_count, reused, removed, True, True)


def _cold_index(
    project: Project,
    load_registry: Callable[[], RegistryFacts],
    files: FileTable,
    jobs: list[tuple[str, str]],
    targets: list[tuple[FolderRows, int]],
    walk_problems: list[list[Any]],
    key: list[Any],
    workers: int | None,
    progress: Progress | None,
) -> tuple[IndexData, RegistryFacts]:
    """The first index: files are parsed in the order resolution takes them (component,
    workspace precedence, path), and each is resolved as its summary arrives, so that
    this process resolves while the workers parse rather than after them. ``jobs`` and
    ``targets`` are emptied as they are used."""
    assert ORDER[-1] == "script" and {"script"} == LAZY_COMPONENTS  # see entries()
    order = project.workspace_ids
    rank = {ws: i for i, ws in enumerate(order)}
    position = {component: i for i, component in enumerate(ORDER)}
    work = [(*job, target) for job, target in zip(jobs, targets, strict=True)]
    jobs.clear()
    targets.clear()
    work.sort(
        key=lambda w: (position.get(w[1], len(ORDER)), rank.get(w[2][0].workspace_id, 99), w[0])
    )
    summaries: dict[str, bytes] = {}

    def entries(results: Iterator[bytes]) -> Iterator[FileEntry]:
        total = len(work)
        for k, summary in enumerate(results):
            path, component, (rows, i) = work[k]
            work[k] = None  # type: ignore[call-overload]  # used: let it go
            rows.hashes[i] = zlib.crc32(summary)
            summaries[path] = summary
            yield FileEntry(path, rows.workspace_id, component, summary)
            if progress is not None and k % 500 == 0:
                progress(k, total)
        lazy = [  # not parsed (scripts): resolution takes them last, as they are
            FileEntry(rows.path_of(i), rows.workspace_id, rows.component, None)
            for rows in files.folders.values()
            if rows.component in LAZY_COMPONENTS
            for i in range(len(rows.names))
        ]
        lazy.sort(key=lambda f: (rank.get(f.workspace_id, 99), f.path))
        yield from lazy  # last: scripts, the one lazy component, are ORDER's last

    with parsing([(w[0], w[1]) for w in work], workers=workers) as results:
        facts = load_registry()  # while the workers parse
        stems = registry_stems(facts)
        result = resolve_all(entries(results), facts, order, stems, in_order=True)
    data = IndexData(files=files, walk_problems=walk_problems, registry_key=key)
    data.with_sections(
        summaries=summaries,
        registry={"registry": dict(facts.definitions), "stems": stems},
        resolved=result.resolved,
        links=result.links,
        listing=result.listing,
    )
    return data, facts


def _gone(old: FileTable, files: FileTable) -> list[str]:
    """The paths ``old`` has and ``files`` has not (a folder kept whole is not looked into)."""
    out: list[str] = []
    for folder, rows in old.folders.items():
        now = files.folders.get(folder)
        if now is rows:
            continue
        present = set(now.names) if now is not None else set()
        out += [rows._path(folder, i) for i, n in enumerate(rows.names) if n not in present]
    return out


def fill_lazy(data: IndexData, paths: Iterable[str]) -> int:
    """Parse the files among ``paths`` whose summary is not current; returns how many."""
    summaries = data.summaries
    count = 0
    for path in paths:
        row = data.files.get(path)
        if row is not None and data.summary(path) is None:
            summary = encode_summary(read_summary(path, row[1]))
            data.files.set_hash(path, zlib.crc32(summary))
            summaries[path] = summary
            count += 1
    return count


def update_paths(
    project: Project,
    registry: RegistryFacts,
    data: IndexData,
    changed: Iterable[Path],
) -> tuple[IndexData, int]:
    """The index after some known paths changed (watch mode): no walk of the whole tree.

    A path that is gone is dropped; one that exists is (re)parsed if it lies in a
    component folder of a workspace. Returns (index, number of paths that changed it).
    """
    from stepkit.project import COMPONENT_DIRS

    files = data.files.copy()
    fresh: dict[str, bytes] = {}
    touched: list[str] = []
    same_identity = True
    for path in _expanded(changed):
        key = str(path)
        where = _component_of(project, path, COMPONENT_DIRS)
        try:
            st = path.stat()
        except OSError:
            gone = [key] if files.remove(key) else files.remove_under(key)  # a file, a folder
            if gone:
                touched += gone
                same_identity = False
            continue
        if where is None or not key.endswith(".py") or path.name == "__init__.py":
            continue
        ws, component = where
        before = files.get(key)
        if before is not None and before[:5] == [
            ws,
            component,
            st.st_mtime_ns,
            st.st_size,
            st.st_ino,
        ]:
            continue
        touched.append(key)
        if component in LAZY_COMPONENTS:
            files.put(key, ws, component, (st.st_mtime_ns, st.st_size, st.st_ino), None)
            same_identity = same_identity and before is not None
            continue
        summary = encode_summary(read_summary(key, component))
        digest = zlib.crc32(summary)
        files.put(key, ws, component, (st.st_mtime_ns, st.st_size, st.st_ino), digest)
        fresh[key] = summary
        same_identity = same_identity and before is not None and before[5] == digest
    if not touched:
        return data, 0
    if same_identity:
        kept = IndexData(
            files=files,
            walk_problems=data.walk_problems,
            registry_key=data.registry_key,
            project=data.project,
            sections=dict(data.sections),
        )
        return kept, len(touched)
    summaries = copy(data.summaries)
    for key in touched:
        if key not in files:
            summaries.pop(key, None)
    summaries.update(fresh)
    updated = resolved_index(
        project,
        registry,
        files,
        summaries,
        walk_problems=data.walk_problems,
        registry_key=data.registry_key,
        snapshot=data.project,
        previous=data,
        changed=touched,
    )
    return updated, len(touched)


def _expanded(changed: Iterable[Path]) -> Iterator[Path]:
    """The changed paths, a folder (moved in, say: its files raise no events of their own)
    standing for the Python files in it."""
    for path in changed:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if p.is_file())
        else:
            yield path


def _component_of(
    project: Project, path: Path, component_dirs: Mapping[str, str]
) -> tuple[str, str] | None:
    for ws in project.workspaces:
        try:
            rel = path.relative_to(ws.steps_dir)
        except ValueError:
            continue
        if len(rel.parts) >= 2 and rel.parts[0] in component_dirs:
            return ws.id, component_dirs[rel.parts[0]]
    return None
