"""SHA-256 digests: validation before any path is built, and streaming hashes in 1 MiB chunks.

Every digest that reaches the store from outside (a CLI argument, a manifest line, a catalog
row) goes through :func:`validate_digest`; a value such as ``"../../etc/passwd"`` is refused
before it can become part of a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import IO, Final

from stepkit.errors import InvalidDigestError

CHUNK_SIZE: Final = 1024 * 1024
_DIGEST = re.compile(r"[0-9a-f]{64}")


def validate_digest(value: object) -> str:
    """``value`` if it is 64 lowercase hex characters, else :class:`InvalidDigestError`."""
    if not isinstance(value, str) or _DIGEST.fullmatch(value) is None:
        raise InvalidDigestError(value)
    return value


def is_digest(value: object) -> bool:
    """True when ``value`` is a valid digest (for filters that skip rather than raise)."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def hash_file(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of the file at ``path``, read once in 1 MiB chunks."""
    with open(path, "rb", buffering=0) as handle:
        return hash_stream(handle)


_local = threading.local()


def _buffer() -> tuple[bytearray, memoryview]:
    """This thread's 1 MiB read buffer: allocating (and zeroing) one per file would cost
    more than hashing a small file."""
    cached: tuple[bytearray, memoryview] | None = getattr(_local, "buffer", None)
    if cached is None:
        buffer = bytearray(CHUNK_SIZE)
        cached = (buffer, memoryview(buffer))
        _local.buffer = cached
    return cached


def hash_stream(stream: IO[bytes]) -> tuple[str, int]:
    """(sha256 hex, size) of what ``stream`` yields until EOF."""
    digest = hashlib.sha256()
    buffer, view = _buffer()
    size = 0
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            count = readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
        else:
            chunk = stream.read(CHUNK_SIZE)
            if not chunk:
                break
            count = len(chunk)
            digest.update(chunk)
        size += count
    return digest.hexdigest(), size


def copy_hashing(stream: IO[bytes], fd: int) -> tuple[str, int]:
    """Copy ``stream`` to the open file descriptor ``fd`` while hashing; (sha256, size).

    The caller fsyncs ``fd``; this only writes, so the bytes are read once and hashed as
    they pass.
    """
    digest = hashlib.sha256()
    buffer, view = _buffer()
    size = 0
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            count = readinto(buffer)
            if not count:
                break
            chunk = view[:count]
        else:
            data = stream.read(CHUNK_SIZE)
            if not data:
                break
            count = len(data)
            chunk = memoryview(data)
        digest.update(chunk)
        written = 0
        while written < count:
            written += os.write(fd, chunk[written:])
        size += count
    return digest.hexdigest(), size


def hash_bytes(data: bytes) -> str:
    """sha256 hex of ``data``."""
    return hashlib.sha256(data).hexdigest()
