"""The catalog index on disk: ``<state_dir>/catalog/``.

``index.bin`` is the commit point: a header (magic, format version, then the length and
CRC-32 of the main section and of each lazy section) and the main section — per-file stat
rows, keys and the project snapshot, what every start reads. Each lazy section lives in a
file of its own, named for its content (``<section>-<crc>-<length>.bin``):

- ``listing``: the rows ``catalog list`` prints;
- ``registry``: the registry digest and its file-name stems;
- ``resolved``: the resolved steps, unmatched files and problems;
- ``links``: which files touch which key (incremental resolution only);
- ``summaries``: the per-file summaries.

A section is read, checked and decoded on first use only, and a section that did not
change is never written again (a section read from a file is never changed in place,
except the partitioned ones, which know whether they were): an edit that keeps what a
file declares rewrites the main section alone. A section is a run of length-prefixed
``marshal`` pieces (:func:`pack`), so no section is ever encoded whole in memory; the
``summaries`` and ``links`` sections are a :class:`PartitionedDict` (64 partitions,
decoded and rewritten one by one).

Anything that does not check out — wrong magic or version, short, CRC mismatch, a
section file missing or of the wrong size, an unreadable payload — is rebuilt with a
warning, never trusted (a lazy section found corrupt when first read raises
:class:`CorruptIndexError`, which the catalog answers by rebuilding). Section files are
written before the header that names them and held open by a reader from the moment it
reads the header, so a concurrent writer replacing them is harmless. Writers take a lock
(``.lock``) around writing sections, the header and removing the section files that no
header names.
"""

from __future__ import annotations

import gc
import marshal
import os
import re
import struct
import tempfile
import time
import weakref
import zlib
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.catalog.files import FileTable
from stepkit.catalog.partitioned import CorruptIndexError, PartitionedDict, pieces_of

if TYPE_CHECKING:
    from stepkit.project import Project

FORMAT_VERSION: Final = 15  # 10: section files; 12: per folder; 13: partitions; 14, 15: tuples
MAGIC: Final = b"STEPKIT-CATALOG\0"
#: The lazy sections, in header order; each in a file of its own.
SECTIONS: Final = ("listing", "registry", "resolved", "links", "summaries")
#: Sections kept as a :class:`PartitionedDict` (large, and read and changed a key at a time).
PARTITIONED: Final = frozenset({"links", "summaries"})
_HEADER: Final = struct.Struct("<16sI" + "QI" * (1 + len(SECTIONS)))
_ORPHAN: Final = re.compile(
    rf"({'|'.join(SECTIONS)})-[0-9a-f]{{8}}-[0-9a-f]+\.bin|\.({'|'.join(SECTIONS)}|index\.bin)\..+\.tmp"
)
#: A section file no header names is removed once older than this. Writers hold a lock,
#: so this only covers a reader between reading the header and opening the files it names
#: (microseconds), and writers where ``fcntl`` is missing.
ORPHAN_GRACE_S: Final = 10.0


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


def section_name(section: str, crc: int, length: int) -> str:
    return f"{section}-{crc:08x}-{length:x}.bin"


class _Section:
    """A section decoded on first use: from an open section file, or built in memory."""

    __slots__ = (
        "__weakref__",
        "_closer",
        "_crc",
        "_fd",
        "_length",
        "_name",
        "_value",
        "partitioned",
    )

    def __init__(
        self,
        value: Any = None,
        *,
        partitioned: bool = False,
        fd: int | None = None,
        name: str = "",
        length: int = 0,
        crc: int = 0,
    ) -> None:
        self._value = value
        self.partitioned = partitioned  # stored as a PartitionedDict
        self._fd = fd  # open since the header was read: the file may be replaced since
        self._name, self._length, self._crc = name, length, crc
        self._closer = weakref.finalize(self, os.close, fd) if fd is not None else None

    @property
    def value(self) -> Any:
        if self._value is None:
            if self._fd is None:
                self._value = PartitionedDict() if self.partitioned else {}
            elif self.partitioned:
                try:
                    self._value = PartitionedDict.decode(self._read())
                except ValueError as exc:
                    raise CorruptIndexError(f"unreadable index section ({exc})") from exc
            else:
                self._value = unpack(self._read())
        return self._value

    def _read(self) -> bytes:
        assert self._fd is not None
        blob = os.pread(self._fd, self._length, 0)
        while len(blob) < self._length:  # pread may return less than asked
            more = os.pread(self._fd, self._length - len(blob), len(blob))
            if not more:
                break
            blob += more
        if len(blob) != self._length or zlib.crc32(blob) != self._crc:
            raise CorruptIndexError(f"catalog index section {self._name} fails its checksum")
        return blob

    def stored(self) -> tuple[str, int, int] | None:
        """(file name, length, CRC) of the section file this was read from, while that
        file still holds exactly this section: a section read from a file is not changed
        in place, except a partitioned one, which knows whether it was."""
        if self._fd is None:
            return None
        if isinstance(self._value, PartitionedDict) and not self._value.unchanged():
            return None
        return self._name, self._length, self._crc

    def pieces(self) -> Iterator[bytes]:
        """The section's bytes, a piece at a time."""
        if self.stored() is not None:
            yield self._read()
            return
        if isinstance(self._value, PartitionedDict):
            yield from self._value.pieces()
        elif self.partitioned and self._value is not None:
            yield from pieces_of(self._value)
        elif self._value is not None:
            yield from pack(self._value)


#: Entries per packed piece: a few hundred KB of bytes at a time (larger blocks, once
#: freed, are kept by the C allocator: a cold start's peak grew by the largest of them).
PIECE_ENTRIES: Final = 1024
_LENGTH: Final = struct.Struct("<I")
_CONTAINERS: Final = (dict, list)


def pack(value: dict[Any, Any]) -> Iterator[bytes]:
    """A dict as length-prefixed ``marshal`` pieces of at most :data:`PIECE_ENTRIES`
    entries each, nested large dicts and lists split too: writing 50,000 rows never holds their
    whole encoding in memory. Each piece is (key path, entries); see :func:`unpack`."""
    for path, part in _parts(value, ()):
        yield from _piece(path, part)


def _piece(path: tuple[Any, ...], part: dict[Any, Any] | list[Any]) -> Iterator[bytes]:
    blob = marshal.dumps((path, part))
    yield _LENGTH.pack(len(blob))
    yield blob


def _parts(
    value: dict[Any, Any], path: tuple[Any, ...]
) -> Iterator[tuple[tuple[Any, ...], dict[Any, Any] | list[Any]]]:
    if len(value) > PIECE_ENTRIES and not _has_large(value):
        # many small entries (file rows, summaries): runs cut in C, not entry by entry
        items = iter(value.items())
        while run := dict(islice(items, PIECE_ENTRIES)):
            yield path, run
        return
    chunk: dict[Any, Any] = {}
    emitted = False
    for key, item in value.items():
        if isinstance(item, (dict, list)) and len(item) > PIECE_ENTRIES:
            if chunk:
                yield path, chunk
                chunk = {}
            if isinstance(item, dict):
                yield from _parts(item, (*path, key))
            else:  # a long list: in runs, extended on reading
                for start in range(0, len(item), PIECE_ENTRIES):
                    yield (*path, key), item[start : start + PIECE_ENTRIES]
            emitted = True
        else:
            chunk[key] = item
            if len(chunk) >= PIECE_ENTRIES:
                yield path, chunk
                chunk, emitted = {}, True
    if chunk or not emitted:
        yield path, chunk


def _has_large(value: dict[Any, Any]) -> bool:
    """Whether a value is a dict or list of more than :data:`PIECE_ENTRIES` entries."""
    try:  # every value sized (the usual case): the lengths are compared in C
        if max(map(len, value.values())) <= PIECE_ENTRIES:
            return False
    except TypeError:  # a number or None among them
        pass
    return any(type(item) in _CONTAINERS and len(item) > PIECE_ENTRIES for item in value.values())


def unpack(blob: bytes | memoryview) -> dict[Any, Any]:
    """The dict :func:`pack` wrote, in its order."""
    view = memoryview(blob)
    out: dict[Any, Any] = {}
    offset = 0
    try:
        while offset < len(view):
            (length,) = _LENGTH.unpack_from(view, offset)
            offset += _LENGTH.size
            if offset + length > len(view):
                raise EOFError("piece runs past the section")
            path, part = marshal.loads(view[offset : offset + length])
            offset += length
            target = out
            if isinstance(part, list):
                *path, last = path
            for key in path:
                target = target.setdefault(key, {})
            if isinstance(part, list):
                target.setdefault(last, []).extend(part)
            else:
                target.update(part)
    except (EOFError, ValueError, TypeError, KeyError, struct.error) as exc:  # the CRC passed
        raise CorruptIndexError(f"unreadable index section ({type(exc).__name__})") from exc
    return out


@dataclass(slots=True)
class IndexData:
    """The index in memory.

    ``files``: path → [workspace, component, mtime_ns, size, inode, summary hash or None
    (not parsed yet)], kept per folder (:mod:`stepkit.catalog.files`); ``listing``: one
    (name, step type, job types, workspaces, JSON) per step, what ``catalog list`` prints.
    """

    files: FileTable = field(default_factory=FileTable)
    walk_problems: list[list[Any]] = field(default_factory=list)  # [path, workspace, message]
    registry_key: list[Any] = field(default_factory=list)
    project: dict[str, Any] = field(default_factory=dict)  # see stepkit.catalog.quick
    sections: dict[str, _Section] = field(default_factory=dict)  # SECTIONS → section

    def section(self, name: str) -> dict[str, Any]:
        found = self.sections.get(name)
        if found is None:  # none stored (empty): an empty one, kept, so writes are not lost
            found = self.sections[name] = _Section(partitioned=name in PARTITIONED)
        return found.value  # type: ignore[no-any-return]

    def with_sections(self, **values: Any) -> None:
        """Set sections to these new values (``listing`` is the list of rows)."""
        for name, value in values.items():
            self.sections[name] = _Section(
                {"rows": value} if name == "listing" else value, partitioned=name in PARTITIONED
            )

    @property
    def listing(self) -> list[tuple[Any, ...]]:
        return self.section("listing").get("rows", [])  # type: ignore[no-any-return]

    @property
    def resolved(self) -> dict[str, Any]:
        return self.section("resolved")

    @property
    def links(self) -> MutableMapping[str, list[str]]:
        return self.section("links")

    @property
    def registry(self) -> dict[str, list[Any]]:
        return self.section("registry").get("registry", {})  # type: ignore[no-any-return]

    @property
    def stems(self) -> dict[str, str]:
        return self.section("registry").get("stems", {})  # type: ignore[no-any-return]

    @property
    def summaries(self) -> MutableMapping[str, bytes]:
        return self.section("summaries")

    def summary(self, path: str) -> dict[str, Any] | None:
        """The file's summary if it is current (None: not parsed since it changed)."""
        digest = self.files.hash_of(path)
        encoded = self.summaries.get(path) if digest is not None else None
        if encoded is None or zlib.crc32(encoded) != digest:
            return None
        return marshal.loads(encoded)  # type: ignore[no-any-return]

    def main_pieces(self) -> Iterator[bytes]:
        """The main section: the keys, then the files a folder per piece (a folder's
        rows are encoded when written, not all at once)."""
        yield from pack(
            {
                "files": {},
                "walk_problems": self.walk_problems,
                "registry_key": self.registry_key,
                "project": self.project,
            }
        )
        for folder, rows in self.files.folders.items():
            yield from _piece(("files",), {folder: rows.plain()})


def _read_exactly(fd: int, length: int, offset: int) -> bytes:
    blob = os.pread(fd, length, offset)
    while len(blob) < length:
        more = os.pread(fd, length - len(blob), offset + len(blob))
        if not more:
            break
        blob += more
    return blob


def _open_sections(folder: Path, table: list[int]) -> dict[str, _Section]:
    """Open every section file the header names, checking that each is there, whole."""
    sections: dict[str, _Section] = {}
    for name, length, crc in zip(SECTIONS, table[0::2], table[1::2], strict=True):
        if not length:
            continue
        filename = section_name(name, crc, length)
        try:
            fd = os.open(folder / filename, os.O_RDONLY)
        except FileNotFoundError:
            raise ValueError(f"section file {filename} is missing") from None
        section = _Section(
            fd=fd, name=filename, length=length, crc=crc, partitioned=name in PARTITIONED
        )
        sections[name] = section  # owns the descriptor from here on
        if os.fstat(fd).st_size != length:
            raise ValueError(f"section file {filename} is truncated")
    return sections


def section_files(path: Path) -> dict[str, str]:
    """Section → the file name the header at ``path`` gives it (non-empty sections)."""
    with path.open("rb") as handle:
        _magic, _version, _length, _crc, *table = _HEADER.unpack(handle.read(_HEADER.size))
    return {
        name: section_name(name, crc, length)
        for name, length, crc in zip(SECTIONS, table[0::2], table[1::2], strict=True)
        if length
    }


def _load(path: Path) -> IndexData:
    fd = os.open(path, os.O_RDONLY)
    try:
        total = os.fstat(fd).st_size
        header = _read_exactly(fd, _HEADER.size, 0)
        if len(header) < _HEADER.size:
            raise ValueError("truncated header")
        magic, version, main_length, main_crc, *table = _HEADER.unpack(header)
        if magic != MAGIC:
            raise ValueError("not a stepkit catalog index")
        if version != FORMAT_VERSION:
            raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
        if total != _HEADER.size + main_length:
            raise ValueError(f"truncated: {total} of {_HEADER.size + main_length} bytes")
        blob = _read_exactly(fd, main_length, _HEADER.size)
        if zlib.crc32(blob) != main_crc:
            raise ValueError("checksum mismatch")
    finally:
        os.close(fd)
    sections = _open_sections(path.parent, table)
    main = unpack(blob)
    try:
        return IndexData(
            files=FileTable.from_plain(main["files"]),
            walk_problems=main["walk_problems"],
            registry_key=main["registry_key"],
            project=main["project"],
            sections=sections,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"unreadable payload ({type(exc).__name__})") from None


#: Readings of a header whose section files a concurrent writer has just replaced.
_LOAD_ATTEMPTS: Final = 3


def load_index(path: Path) -> tuple[IndexData | None, str | None]:
    """(index, None), (None, None) when there is none yet, or (None, warning) when broken."""
    for attempt in range(_LOAD_ATTEMPTS):
        try:
            return _load(path), None
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"catalog index {path} cannot be read ({exc.strerror}); rebuilding it"
        except ValueError as exc:
            if attempt < _LOAD_ATTEMPTS - 1 and "missing" in str(exc):
                continue  # another process may have just replaced the index: read it again
            return None, f"catalog index {path} is unusable ({exc}); rebuilding it"
    raise AssertionError("unreachable")


def save_index(path: Path, data: IndexData) -> bool:
    """Write the sections that changed, then the header naming them (atomically), then
    remove the section files no header names. A read-only state folder only costs the
    next start."""
    from stepkit.atomic import atomic_writer

    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _writers_lock(folder):
            table: list[int] = []
            for name in SECTIONS:
                section = data.sections.get(name)
                length, crc = _save_section(folder, name, section) if section else (0, 0)
                table += [length, crc]
            with atomic_writer(path, durable=False) as handle:
                handle.write(b"\0" * _HEADER.size)
                length = crc = 0
                for piece in data.main_pieces():
                    handle.write(piece)
                    length += len(piece)
                    crc = zlib.crc32(piece, crc)
                handle.seek(0)
                handle.write(_HEADER.pack(MAGIC, FORMAT_VERSION, length, crc, *table))
            lengths, crcs = table[0::2], table[1::2]
            _remove_orphans(
                folder, {section_name(*s) for s in zip(SECTIONS, crcs, lengths, strict=True)}
            )
    except OSError:  # the index is a cache: failing to write it never fails the query
        return False
    except CorruptIndexError:  # a section to copy over no longer checks out: the index
        return False  # on disk stays as it was, and its next reader rebuilds it
    return True


@contextmanager
def _writers_lock(folder: Path) -> Iterator[None]:
    """One writer at a time in ``folder`` (readers take no lock: they hold the section
    files open). Where ``fcntl`` is missing, writers rely on the orphans' grace period."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _save_section(folder: Path, name: str, section: _Section) -> tuple[int, int]:
    """Write the section's file unless it is there already; its (length, CRC)."""
    stored = section.stored()
    if stored is not None:
        filename, length, crc = stored
        try:
            os.utime(folder / filename)  # still there: in use again (see ORPHAN_GRACE_S)
            return length, crc
        except OSError:  # removed meanwhile, or another user's file (a shared state
            pass  # folder): written again from the open descriptor, below
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        length = crc = 0
        with os.fdopen(fd, "wb") as handle:
            for piece in section.pieces():
                handle.write(piece)
                length += len(piece)
                crc = zlib.crc32(piece, crc)
        if length:
            os.chmod(tmp, 0o644)
            os.replace(tmp, folder / section_name(name, crc, length))  # the same bytes if
        else:  # it was there already: content-addressed
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return length, crc


def _remove_orphans(folder: Path, keep: set[str]) -> None:
    """Remove section files no header names, and temp files a crashed writer left."""
    now = time.time()
    for entry in os.scandir(folder):
        if entry.name in keep or not _ORPHAN.fullmatch(entry.name):
            continue
        try:
            if now - entry.stat().st_mtime > ORPHAN_GRACE_S:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass
