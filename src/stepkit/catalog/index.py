"""The persisted catalog index: facts per file, keyed by (mtime, size, inode), and the
resolved steps, so that a warm start parses only what changed.

The file is ``<state_dir>/catalog/index.bin``: a header (magic, format version, payload
length, CRC-32) and a ``marshal`` payload of plain data. Anything that does not check out
— wrong magic or version, short, CRC mismatch, unreadable payload — is rebuilt with a
warning, never trusted. Writes are atomic. Parsing many files uses every core.
"""

from __future__ import annotations

import marshal
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.catalog.discovery import read_facts, read_many
from stepkit.catalog.resolution import FileEntry, RegistryFacts, resolve

if TYPE_CHECKING:
    from stepkit.project import FileRecord, Project

FORMAT_VERSION: Final = 1
MAGIC: Final = b"STEPKIT-CATALOG\0"
_HEADER: Final = struct.Struct("<16sIQI")  # magic, version, payload length, crc32
#: Below this many files to parse, one process is faster than starting a pool.
PARALLEL_THRESHOLD: Final = 1500

Progress = Callable[[int, int], None]


def index_path(project: Project) -> Path:
    return project.state_dir / "catalog" / "index.bin"


@dataclass(slots=True)
class IndexData:
    """The index in memory: per-file stat and facts, the resolved steps, and their keys."""

    # path → [workspace, component, mtime_ns, size, inode, facts]
    files: dict[str, list[Any]] = field(default_factory=dict)
    walk_problems: list[list[Any]] = field(default_factory=list)  # [path, workspace, message]
    resolved: dict[str, Any] = field(default_factory=dict)
    registry_key: list[Any] = field(default_factory=list)
    project_key: list[Any] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "walk_problems": self.walk_problems,
            "resolved": self.resolved,
            "registry_key": self.registry_key,
            "project_key": self.project_key,
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
    payload = marshal.dumps(data.to_plain())
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload), zlib.crc32(payload))
    return header + payload


def decode(blob: bytes) -> IndexData:
    """The index in ``blob``; ``ValueError`` saying what is wrong when it does not check out."""
    if len(blob) < _HEADER.size:
        raise ValueError("truncated header")
    magic, version, length, crc = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("not a stepkit catalog index")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
    payload = memoryview(blob)[_HEADER.size :]
    if len(payload) != length:
        raise ValueError(f"truncated: {len(payload)} of {length} bytes")
    if zlib.crc32(payload) != crc:
        raise ValueError("checksum mismatch")
    try:
        plain = marshal.loads(payload)
        return IndexData(
            files=plain["files"],
            walk_problems=plain["walk_problems"],
            resolved=plain["resolved"],
            registry_key=plain["registry_key"],
            project_key=plain["project_key"],
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
    jobs: list[tuple[str, str]], *, workers: int | None = None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Facts of every (path, component), in order; in several processes when many."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(jobs) < PARALLEL_THRESHOLD:
        out = []
        for i, (path, component) in enumerate(jobs):
            out.append(read_facts(path, component))
            if progress is not None and i % 500 == 0:
                progress(i, len(jobs))
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(200, len(jobs) // (count * 4))
    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    # fork: the workers need nothing but this module, already imported
    context = multiprocessing.get_context("fork")
    results: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        for done in pool.map(read_many, chunks):
            results.extend(done)
            if progress is not None:
                progress(len(results), len(jobs))
    return results


# -- refresh ----------------------------------------------------------------------------------


def _entries(files: Mapping[str, list[Any]]) -> Iterable[FileEntry]:
    for path, (ws, component, _m, _s, _i, facts) in files.items():
        yield FileEntry(path, ws, component, facts)


def refresh(
    project: Project,
    registry: RegistryFacts | Callable[[], RegistryFacts],
    *,
    previous: IndexData | None,
    records: Iterable[FileRecord],
    walk_problems: list[list[Any]],
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[IndexData, int, int, int, bool]:
    """The index for the walked ``records``: unchanged files keep their facts, the rest are
    parsed; steps are resolved again only when a file or the registry changed.

    Returns (index, parsed, reused, removed, resolved_again).
    """
    old = previous.files if previous is not None else {}
    files: dict[str, list[Any]] = {}
    jobs: list[tuple[str, str]] = []
    pending: list[tuple[str, list[Any]]] = []
    reused = 0
    for rec in records:
        path = str(rec.path)
        row = [rec.workspace_id, rec.component, rec.mtime_ns, rec.size, rec.inode]
        before = old.get(path)
        if before is not None and before[:5] == row:
            files[path] = before
            reused += 1
        else:
            jobs.append((path, rec.component))
            pending.append((path, row))
    if jobs:
        for (path, row), facts in zip(
            pending, parse_files(jobs, workers=workers, progress=progress), strict=True
        ):
            files[path] = [*row, facts]
    removed = sum(1 for path in old if path not in files)
    key = registry_key(project)
    unchanged = (
        previous is not None
        and not jobs
        and not removed
        and previous.registry_key == key
        and previous.walk_problems == walk_problems
    )
    if unchanged and previous is not None:
        return previous, 0, reused, 0, False
    facts_of = registry() if callable(registry) else registry
    resolved = resolve(_entries(files), facts_of, project.workspace_ids)
    data = IndexData(
        files=files,
        walk_problems=walk_problems,
        resolved=resolved,
        registry_key=key,
        project_key=previous.project_key if previous is not None else [],
    )
    return data, len(jobs), reused, removed, True


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
    touched = 0
    for path in changed:
        key = str(path)
        where = _component_of(project, path, COMPONENT_DIRS)
        try:
            st = path.stat()
        except OSError:
            if files.pop(key, None) is not None:
                touched += 1
            continue
        if where is None or not key.endswith(".py") or path.name == "__init__.py":
            continue
        ws, component = where
        row = [ws, component, st.st_mtime_ns, st.st_size, st.st_ino]
        before = files.get(key)
        if before is not None and before[:5] == row:
            continue
        files[key] = [*row, read_facts(key, component)]
        touched += 1
    if not touched:
        return data, 0
    resolved = resolve(_entries(files), registry, project.workspace_ids)
    return (
        IndexData(files, data.walk_problems, resolved, data.registry_key, data.project_key),
        touched,
    )


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
