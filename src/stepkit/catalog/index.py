"""The persisted catalog index: facts per file, keyed by (mtime, size, inode), and the
resolved steps, so that a warm start parses only what changed.

The file is ``<state_dir>/catalog/index.bin``: a header (magic, format version, payload
length, CRC-32) and a ``marshal`` payload of plain data. Anything that does not check out
— wrong magic or version, short, CRC mismatch, unreadable payload — is rebuilt with a
warning, never trusted. Writes are atomic. Parsing many files uses every core.
"""

from __future__ import annotations

import gc
import marshal
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.catalog.discovery import read_summaries, read_summary
from stepkit.catalog.resolution import FileEntry, RegistryFacts, resolve

if TYPE_CHECKING:
    from stepkit.project import Project, RawFile

FORMAT_VERSION: Final = 3
MAGIC: Final = b"STEPKIT-CATALOG\0"
_HEADER: Final = struct.Struct("<16sIQIQI")  # magic, version, (length, crc32) × 2 sections
#: Below this many files to parse, one process is faster than starting a pool.
PARALLEL_THRESHOLD: Final = 1500

Progress = Callable[[int, int], None]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small containers.

    Loading or resolving an index of 50,000 files allocates millions of lists and dicts
    that hold no cycles; the collector would walk them again and again (4x slower).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def index_path(project: Project) -> Path:
    return project.state_dir / "catalog" / "index.bin"


@dataclass(slots=True)
class IndexData:
    """The index in memory: per-file stat data and summaries, the resolved steps, keys.

    Summaries are a section of their own, decoded only when something changed (a warm
    start with nothing changed needs the stat data and the resolved steps only).
    """

    # path → [workspace, component, mtime_ns, size, inode]
    files: dict[str, list[Any]] = field(default_factory=dict)
    walk_problems: list[list[Any]] = field(default_factory=list)  # [path, workspace, message]
    resolved: dict[str, Any] = field(default_factory=dict)
    registry_key: list[Any] = field(default_factory=list)
    registry: dict[str, list[Any]] = field(default_factory=dict)  # RegistryFacts rows
    project: dict[str, Any] = field(default_factory=dict)  # see stepkit.catalog.quick
    loaded_summaries: dict[str, Any] | None = None  # path → summary (None: lazily parsed)
    summary_blob: bytes | None = None  # the encoded section, until first needed

    @property
    def summaries(self) -> dict[str, Any]:
        if self.loaded_summaries is None:
            blob, self.summary_blob = self.summary_blob, None
            try:
                self.loaded_summaries = marshal.loads(blob) if blob else {}
            except (EOFError, ValueError, TypeError) as exc:  # CRC passed: a marshal bug
                raise ValueError(f"unreadable summaries ({type(exc).__name__})") from exc
        return self.loaded_summaries

    def main_section(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "walk_problems": self.walk_problems,
            "resolved": self.resolved,
            "registry_key": self.registry_key,
            "registry": self.registry,
            "project": self.project,
        }


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one refresh did: files parsed (new or changed), reused, removed; warnings."""

    parsed: int
    reused: int
    removed: int
    resolved_again: bool
    warnings: tuple[str, ...]
    saved: bool


# -- the file ---------------------------------------------------------------------------------


def encode(data: IndexData) -> bytes:
    main = marshal.dumps(data.main_section())
    if data.loaded_summaries is None and data.summary_blob is not None:
        summaries = data.summary_blob  # never decoded: write it back as it was
    else:
        summaries = marshal.dumps(data.summaries)
    header = _HEADER.pack(
        MAGIC, FORMAT_VERSION, len(main), zlib.crc32(main), len(summaries), zlib.crc32(summaries)
    )
    return b"".join((header, main, summaries))


def decode(blob: bytes) -> IndexData:
    """The index in ``blob``; ``ValueError`` saying what is wrong when it does not check out."""
    if len(blob) < _HEADER.size:
        raise ValueError("truncated header")
    magic, version, main_len, main_crc, sum_len, sum_crc = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("not a stepkit catalog index")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
    if len(blob) != _HEADER.size + main_len + sum_len:
        raise ValueError(f"truncated: {len(blob)} of {_HEADER.size + main_len + sum_len} bytes")
    view = memoryview(blob)
    main = view[_HEADER.size : _HEADER.size + main_len]
    summaries = view[_HEADER.size + main_len :]
    if zlib.crc32(main) != main_crc or zlib.crc32(summaries) != sum_crc:
        raise ValueError("checksum mismatch")
    try:
        plain = marshal.loads(main)
        return IndexData(
            files=plain["files"],
            walk_problems=plain["walk_problems"],
            resolved=plain["resolved"],
            registry_key=plain["registry_key"],
            registry=plain["registry"],
            project=plain["project"],
            summary_blob=bytes(summaries),
        )
    except (EOFError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"unreadable payload ({type(exc).__name__})") from exc


def load_index(path: Path) -> tuple[IndexData | None, str | None]:
    """(index, None), (None, None) when there is none yet, or (None, warning) when broken."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"catalog index {path} cannot be read ({exc.strerror}); rebuilding it"
    try:
        return decode(blob), None
    except ValueError as exc:
        return None, f"catalog index {path} is unusable ({exc}); rebuilding it"


def save_index(path: Path, data: IndexData) -> bool:
    """Write the index atomically; a read-only state folder only costs the next start."""
    from stepkit.atomic import atomic_write_bytes

    try:
        atomic_write_bytes(path, encode(data), durable=False)
    except OSError:  # the index is a cache: failing to write it never fails the query
        return False
    return True


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


def parse_files(
    jobs: list[tuple[str, str]],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Summaries of every (path, component), in order; in several processes when many.

    ``meanwhile`` runs in this process while the workers parse (e.g. reading the registry).
    """
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(jobs) < PARALLEL_THRESHOLD:
        if meanwhile is not None:
            meanwhile()
        out = []
        for i, (path, component) in enumerate(jobs):
            out.append(read_summary(path, component))
            if progress is not None and i % 500 == 0:
                progress(i, len(jobs))
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(200, len(jobs) // (count * 4))
    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    # fork: the workers need nothing but this module, already imported (and they inherit
    # the paused garbage collector, which halves the cost of building syntax trees)
    context = multiprocessing.get_context("fork")
    results: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        futures = [pool.submit(read_summaries, c) for c in chunks]
        if meanwhile is not None:
            meanwhile()
        for future in futures:
            results.extend(future.result())
            if progress is not None:
                progress(len(results), len(jobs))
    return results


# -- refresh ----------------------------------------------------------------------------------


#: Components parsed only when a query needs them (resolution does not).
LAZY_COMPONENTS: Final = frozenset({"script"})
_NO_SUMMARY: Final[dict[str, Any]] = {}


def _entries(data: IndexData) -> Iterable[FileEntry]:
    summaries = data.summaries
    for path, (ws, component, _m, _s, _i) in data.files.items():
        summary = summaries.get(path)
        yield FileEntry(path, ws, component, summary if summary is not None else _NO_SUMMARY)


def registry_facts(
    project: Project, previous: IndexData | None, load: Callable[[], RegistryFacts]
) -> tuple[RegistryFacts, list[Any], bool]:
    """The registry digest: the index's own while the registry files are unchanged.

    Returns (facts, key, reused).
    """
    key = registry_key(project)
    if previous is not None and previous.registry_key == key and previous.registry:
        return RegistryFacts.from_rows(previous.registry), key, True
    return load(), key, False


def refresh(
    project: Project,
    load_registry: Callable[[], RegistryFacts],
    *,
    previous: IndexData | None,
    records: Iterable[RawFile],
    walk_problems: list[list[Any]],
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[IndexData, RegistryFacts, RefreshCounts]:
    """The index for the walked ``records``: unchanged files keep their summaries, the rest
    are parsed; steps are resolved again only when a file or the registry changed."""
    old = previous.files if previous is not None else {}
    files: dict[str, list[Any]] = {}
    jobs: list[tuple[str, str]] = []
    lazy: list[str] = []
    reused: list[str] = []
    for path, ws, component, mtime, size, inode in records:
        row = [ws, component, mtime, size, inode]
        before = old.get(path)
        if before is not None and before == row:
            files[path] = before
            reused.append(path)
            continue
        files[path] = row
        if component in LAZY_COMPONENTS:
            lazy.append(path)
        else:
            jobs.append((path, component))
    loaded: list[tuple[RegistryFacts, list[Any], bool]] = []

    def load() -> None:
        loaded.append(registry_facts(project, previous, load_registry))

    parsed = parse_files(jobs, workers=workers, progress=progress, meanwhile=load) if jobs else []
    if not jobs:
        load()
    removed = sum(1 for path in old if path not in files)
    facts, key, registry_reused = loaded[0]
    counts = RefreshCounts(len(jobs), len(reused), removed, resolved_again=False)
    if (
        previous is not None
        and registry_reused
        and not jobs
        and not lazy
        and not removed
        and previous.walk_problems == walk_problems
    ):
        return previous, facts, counts
    old_summaries = previous.summaries if previous is not None else {}
    summaries = {path: old_summaries.get(path) for path in reused}
    summaries.update(zip((path for path, _ in jobs), parsed, strict=True))
    data = IndexData(
        files=files,
        walk_problems=walk_problems,
        resolved={},
        registry_key=key,
        registry=dict(facts.definitions),
        project=previous.project if previous is not None else {},
        loaded_summaries=summaries,
    )
    data.resolved = resolve(_entries(data), facts, project.workspace_ids)
    return data, facts, RefreshCounts(len(jobs) + len(lazy), len(reused), removed, True)


@dataclass(frozen=True, slots=True)
class RefreshCounts:
    parsed: int
    reused: int
    removed: int
    resolved_again: bool


def fill_lazy(data: IndexData, paths: Iterable[str]) -> int:
    """Parse the lazily indexed files among ``paths`` now; returns how many were parsed."""
    summaries = data.summaries
    count = 0
    for path in paths:
        row = data.files.get(path)
        if row is not None and summaries.get(path) is None:
            summaries[path] = read_summary(path, row[1])
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

    files = dict(data.files)
    summaries = dict(data.summaries)
    touched = 0
    for path in changed:
        key = str(path)
        where = _component_of(project, path, COMPONENT_DIRS)
        try:
            st = path.stat()
        except OSError:
            if files.pop(key, None) is not None:
                summaries.pop(key, None)
                touched += 1
            continue
        if where is None or not key.endswith(".py") or path.name == "__init__.py":
            continue
        ws, component = where
        row: list[Any] = [ws, component, st.st_mtime_ns, st.st_size, st.st_ino]
        if files.get(key) == row:
            continue
        files[key] = row
        summaries[key] = None if component in LAZY_COMPONENTS else read_summary(key, component)
        touched += 1
    if not touched:
        return data, 0
    updated = IndexData(
        files=files,
        walk_problems=data.walk_problems,
        resolved={},
        registry_key=data.registry_key,
        registry=data.registry,
        project=data.project,
        loaded_summaries=summaries,
    )
    updated.resolved = resolve(_entries(updated), registry, project.workspace_ids)
    return updated, touched


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
