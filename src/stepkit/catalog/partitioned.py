"""A large dict of the index, stored in partitions that are decoded and written one by one.

The per-file summaries and the links of incremental resolution hold ~50,000 entries each.
An edit that changes what one file declares reads a handful of them and changes a
handful: decoding and encoding all of them would cost more than the resolution itself.
Each key belongs to one of :data:`PARTITIONS` partitions (by a CRC-32 of the key, the
same in every process); a partition is decoded on first use, and written back as the
bytes it was read from unless it changed. A copy shares partitions until one changes.
"""

from __future__ import annotations

import marshal
import struct
import zlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Final

PARTITIONS: Final = 64


class CorruptIndexError(ValueError):
    """A lazily read part of the catalog index does not check out (it must be rebuilt)."""


_LENGTH: Final = struct.Struct("<I")


def partition_of(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % PARTITIONS


def pieces_of(values: Mapping[str, Any]) -> Iterator[bytes]:
    """The stored form of a plain dict (what ``PartitionedDict(values).pieces()`` gives),
    with one partition in memory at a time rather than a second copy of the whole dict."""
    buckets: list[list[str]] = [[] for _ in range(PARTITIONS)]
    for key in values:
        buckets[partition_of(key)].append(key)
    for keys in buckets:
        blob = marshal.dumps({key: values[key] for key in keys})
        yield _LENGTH.pack(len(blob))
        yield blob


class PartitionedDict(MutableMapping[str, Any]):
    """A ``str``-keyed dict in :data:`PARTITIONS` parts, each kept as encoded bytes until
    it is used (see the module)."""

    __slots__ = ("_blobs", "_owned", "_parts")

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._parts: list[dict[str, Any] | None] = [{} for _ in range(PARTITIONS)]
        self._blobs: list[bytes | memoryview | None] = [None] * PARTITIONS
        self._owned = [True] * PARTITIONS  # False: shared with a copy, copied on change
        for key, value in (values or {}).items():
            self[key] = value

    # -- stored form ------------------------------------------------------------------------

    @classmethod
    def decode(cls, blob: bytes) -> PartitionedDict:
        """The dict :meth:`pieces` wrote; partitions stay encoded until used.

        Raises:
            ValueError: the bytes are not such a dict.
        """
        out = cls()
        view = memoryview(blob)
        offset = 0
        for i in range(PARTITIONS):
            if offset + _LENGTH.size > len(view):
                raise ValueError("partitioned section is short")
            (length,) = _LENGTH.unpack_from(view, offset)
            offset += _LENGTH.size
            if offset + length > len(view):
                raise ValueError("partition runs past the section")
            out._parts[i] = None
            out._blobs[i] = view[offset : offset + length]
            offset += length
        if offset != len(view):
            raise ValueError("partitioned section has trailing bytes")
        return out

    def pieces(self) -> Iterator[bytes]:
        """Each partition, length-prefixed: as read when unchanged, else encoded anew."""
        for i in range(PARTITIONS):
            blob = self._blobs[i]
            if blob is None:
                blob = marshal.dumps(self._parts[i])
            yield _LENGTH.pack(len(blob))
            yield bytes(blob) if isinstance(blob, memoryview) else blob

    def unchanged(self) -> bool:
        """Every partition is as it was read (so the stored bytes still hold them all)."""
        return all(blob is not None for blob in self._blobs)

    def _part(self, i: int) -> dict[str, Any]:
        part = self._parts[i]
        if part is None:
            blob = self._blobs[i]
            try:
                part = marshal.loads(blob)  # type: ignore[arg-type]
            except (EOFError, ValueError, TypeError) as exc:
                raise CorruptIndexError(f"unreadable partition ({type(exc).__name__})") from exc
            if not isinstance(part, dict):
                raise CorruptIndexError("unreadable partition (not a dict)")
            self._parts[i] = part
        return part

    def _writable(self, i: int) -> dict[str, Any]:
        part = self._part(i)
        if not self._owned[i]:
            part = self._parts[i] = dict(part)
            self._owned[i] = True
        self._blobs[i] = None  # changed: encoded again when written
        return part

    # -- mapping ----------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._part(partition_of(key))[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._part(partition_of(key)).get(key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._part(partition_of(key))

    def __setitem__(self, key: str, value: Any) -> None:
        self._writable(partition_of(key))[key] = value

    def __delitem__(self, key: str) -> None:
        i = partition_of(key)
        if key not in self._part(i):
            raise KeyError(key)
        del self._writable(i)[key]

    def __iter__(self) -> Iterator[str]:
        for i in range(PARTITIONS):
            yield from self._part(i)

    def __len__(self) -> int:
        return sum(len(self._part(i)) for i in range(PARTITIONS))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> PartitionedDict:
        """A dict sharing every partition with this one until either changes it."""
        out = PartitionedDict()
        out._parts = list(self._parts)
        out._blobs = list(self._blobs)
        out._owned = [False] * PARTITIONS
        self._owned = [False] * PARTITIONS  # neither changes a shared partition in place
        return out

    __copy__ = copy
