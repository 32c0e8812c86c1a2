"""The catalog index on disk: ``<state_dir>/catalog/index.bin``.

A header (magic, format version, then length and CRC-32 of each section) and four
sections of plain data, each a run of length-prefixed ``marshal`` pieces (:func:`pack`:
no section is ever encoded whole in memory):

1. always read: per-file stat rows, keys, the project snapshot and the ``list`` rows;
2. read on first use: the registry digest and its file-name stems;
3. read on first use: the resolved steps and the links of incremental resolution;
4. read on first use: the per-file summaries.

A warm ``catalog list`` decodes only the first. Anything that does not check out — wrong
magic or version, short, CRC mismatch, unreadable payload — is rebuilt with a warning,
never trusted. Writes are atomic; a section never decoded is written back as it was.
"""

from __future__ import annotations

import gc
import io
import marshal
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from stepkit.project import Project

FORMAT_VERSION: Final = 9  # 5: links; 6, 8: encoded summaries; 7: pieces; 9: 4 sections
MAGIC: Final = b"STEPKIT-CATALOG\0"
_HEADER: Final = struct.Struct("<16sI" + "QI" * 4)  # magic, version, (length, crc32) × 4


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


class _Section:
    """A marshal section decoded on first use (or built in memory)."""

    __slots__ = ("_blob", "_crc", "_value")

    def __init__(
        self, *, blob: bytes | None = None, value: Any = None, crc: int | None = None
    ) -> None:
        self._blob = blob
        self._value = value
        self._crc = crc  # of the blob, when known: an unchanged section is not summed again

    @property
    def value(self) -> Any:
        if self._value is None:
            blob, self._blob = self._blob, None
            try:
                self._value = unpack(blob) if blob else {}
            except (EOFError, ValueError, TypeError, KeyError) as exc:  # the CRC passed
                raise ValueError(f"unreadable index section ({type(exc).__name__})") from exc
        return self._value

    def pieces(self) -> Iterator[bytes]:
        """The section's bytes, a piece at a time (as it was read, when never decoded)."""
        if self._value is None and self._blob is not None:
            yield self._blob
            return
        yield from pack(self.value)

    def known_crc(self) -> int | None:
        """The CRC-32 of :meth:`pieces` when it is known already (a section never decoded)."""
        if self._value is None and self._blob is not None:
            return self._crc
        return None


#: Entries per packed piece: a few hundred KB of bytes, not tens of MB at once.
PIECE_ENTRIES: Final = 4096
_LENGTH: Final = struct.Struct("<I")
_CONTAINERS: Final = (dict, list)


def pack(value: dict[Any, Any]) -> Iterator[bytes]:
    """A dict as length-prefixed ``marshal`` pieces of at most :data:`PIECE_ENTRIES`
    entries each, nested large dicts and lists split too: writing 50,000 rows never holds their
    whole encoding in memory. Each piece is (key path, entries); see :func:`unpack`."""
    for path, part in _parts(value, ()):
        blob = marshal.dumps((path, part))
        yield _LENGTH.pack(len(blob))
        yield blob


def _parts(
    value: dict[Any, Any], path: tuple[Any, ...]
) -> Iterator[tuple[tuple[Any, ...], dict[Any, Any] | list[Any]]]:
    if len(value) > PIECE_ENTRIES and not any(
        type(item) in _CONTAINERS and len(item) > PIECE_ENTRIES for item in value.values()
    ):  # many small entries (file rows, summaries): runs cut in C, not entry by entry
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


def unpack(blob: bytes | memoryview) -> dict[Any, Any]:
    """The dict :func:`pack` wrote, in its order."""
    view = memoryview(blob)
    out: dict[Any, Any] = {}
    offset = 0
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
    return out


@dataclass(slots=True)
class IndexData:
    """The index in memory.

    ``files``: path → [workspace, component, mtime_ns, size, inode, summary hash or None
    (not parsed yet)]; ``listing``: one [name, step type, job types, workspaces, JSON] per
    step, what ``catalog list`` prints.
    """

    files: dict[str, list[Any]] = field(default_factory=dict)
    walk_problems: list[list[Any]] = field(default_factory=list)  # [path, workspace, message]
    registry_key: list[Any] = field(default_factory=list)
    project: dict[str, Any] = field(default_factory=dict)  # see stepkit.catalog.quick
    listing: list[list[Any]] = field(default_factory=list)
    # {"registry": digest rows, "stems": file-name stems}: apart, so that reading the
    # registry digest (watch mode does) leaves the large section below as it was read
    registry_section: _Section = field(default_factory=_Section)
    deep: _Section = field(default_factory=_Section)  # {"resolved": …, "links": …}
    # path → encoded summary (discovery.encode_summary; its CRC-32 is the hash in ``files``)
    summary_section: _Section = field(default_factory=_Section)

    @property
    def resolved(self) -> dict[str, Any]:
        return self.deep.value["resolved"]  # type: ignore[no-any-return]

    @property
    def registry(self) -> dict[str, list[Any]]:
        return self.registry_section.value.get("registry", {})  # type: ignore[no-any-return]

    @property
    def stems(self) -> dict[str, str]:
        return self.registry_section.value.get("stems", {})  # type: ignore[no-any-return]

    @property
    def summaries(self) -> dict[str, bytes]:
        return self.summary_section.value  # type: ignore[no-any-return]

    def summary(self, path: str) -> dict[str, Any] | None:
        """The file's summary if it is current (None: not parsed since it changed)."""
        row = self.files.get(path)
        encoded = self.summaries.get(path)
        if row is None or encoded is None or row[5] is None or zlib.crc32(encoded) != row[5]:
            return None
        return marshal.loads(encoded)  # type: ignore[no-any-return]

    def main_section(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "walk_problems": self.walk_problems,
            "registry_key": self.registry_key,
            "project": self.project,
            "listing": self.listing,
        }


def _section_pieces(data: IndexData) -> list[Iterator[bytes]]:
    return [
        pack(data.main_section()),
        data.registry_section.pieces(),
        data.deep.pieces(),
        data.summary_section.pieces(),
    ]


def encode(data: IndexData) -> bytes:
    """The whole index as bytes (what :func:`save_index` writes, piece by piece)."""
    sections = [b"".join(pieces) for pieces in _section_pieces(data)]
    lengths: list[int] = []
    for blob in sections:
        lengths += [len(blob), zlib.crc32(blob)]
    return b"".join([_HEADER.pack(MAGIC, FORMAT_VERSION, *lengths), *sections])


def _checked_sections(read: Callable[[int], bytes], total: int) -> list[tuple[bytes, int]]:
    header = read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise ValueError("truncated header")
    magic, version, *lengths = _HEADER.unpack(header)
    if magic != MAGIC:
        raise ValueError("not a stepkit catalog index")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
    expected = _HEADER.size + sum(lengths[0::2])
    if total != expected:
        raise ValueError(f"truncated: {total} of {expected} bytes")
    sections: list[tuple[bytes, int]] = []
    for length, crc in zip(lengths[0::2], lengths[1::2], strict=True):
        section = read(length)
        if len(section) != length or zlib.crc32(section) != crc:
            raise ValueError("checksum mismatch")
        sections.append((section, crc))
    return sections


def _from_sections(sections: list[tuple[bytes, int]]) -> IndexData:
    try:
        main = unpack(sections[0][0])
        return IndexData(
            files=main["files"],
            walk_problems=main["walk_problems"],
            registry_key=main["registry_key"],
            project=main["project"],
            listing=main["listing"],
            registry_section=_Section(blob=sections[1][0], crc=sections[1][1]),
            deep=_Section(blob=sections[2][0], crc=sections[2][1]),
            summary_section=_Section(blob=sections[3][0], crc=sections[3][1]),
        )
    except (EOFError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"unreadable payload ({type(exc).__name__})") from exc


def decode(blob: bytes) -> IndexData:
    """The index in ``blob``; ``ValueError`` saying what is wrong when it does not check out."""
    stream = io.BytesIO(blob)
    return _from_sections(_checked_sections(stream.read, len(blob)))


def load_index(path: Path) -> tuple[IndexData | None, str | None]:
    """(index, None), (None, None) when there is none yet, or (None, warning) when broken."""
    try:
        # section by section: no second copy of the lazily decoded ones
        with path.open("rb") as handle:
            sections = _checked_sections(handle.read, os.fstat(handle.fileno()).st_size)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"catalog index {path} cannot be read ({exc.strerror}); rebuilding it"
    except ValueError as exc:
        return None, f"catalog index {path} is unusable ({exc}); rebuilding it"
    try:
        return _from_sections(sections), None
    except ValueError as exc:
        return None, f"catalog index {path} is unusable ({exc}); rebuilding it"


def save_index(path: Path, data: IndexData) -> bool:
    """Write the index atomically, one section at a time (the header, which holds their
    lengths and checksums, last), so that no second copy of the whole index is held.
    A read-only state folder only costs the next start."""
    from stepkit.atomic import atomic_writer

    try:
        with atomic_writer(path, durable=False) as handle:
            handle.write(b"\0" * _HEADER.size)
            lengths: list[int] = []
            known = [
                None,
                data.registry_section.known_crc(),
                data.deep.known_crc(),
                data.summary_section.known_crc(),
            ]
            for pieces, known_crc in zip(_section_pieces(data), known, strict=True):
                length = crc = 0
                for piece in pieces:
                    handle.write(piece)
                    length += len(piece)
                    if known_crc is None:
                        crc = zlib.crc32(piece, crc)
                lengths += [length, crc if known_crc is None else known_crc]
            handle.seek(0)
            handle.write(_HEADER.pack(MAGIC, FORMAT_VERSION, *lengths))
    except OSError:  # the index is a cache: failing to write it never fails the query
        return False
    return True
