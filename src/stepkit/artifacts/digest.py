"""SHA-256 digests: validation before any path is built, and streaming hashes in 1 MiB chunks.

Every digest that reaches the store from outside (a CLI argument, a manifest line, a catalog
row) goes through :func:`validate_digest`; a value such as ``"../../etc/passwd"`` is refused
before it can become part of a path.

A large file is copied by :func:`copy_file_hashing`: the kernel copies it
(``copy_file_range``, no byte through Python) in one thread while this one hashes it, so
the copy, the hashing and the disk's write-back overlap instead of following each other.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from hashlib import _Hash

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


def read_head(stream: IO[bytes]) -> memoryview:
    """Up to one chunk from ``stream``, in this thread's buffer (valid until its next use).

    Shorter than :data:`CHUNK_SIZE` only at the end of the stream: then it is the whole
    content, and a small file needs no second read.
    """
    view = _buffer()[1]
    readinto = getattr(stream, "readinto", None)
    filled = 0
    while filled < CHUNK_SIZE:
        if readinto is not None:
            count = readinto(view[filled:])
        else:
            data = stream.read(CHUNK_SIZE - filled)
            count = len(data)
            view[filled : filled + count] = data
        if not count:
            break
        filled += count
    return view[:filled]


def write_all(fd: int, data: memoryview | bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.write(fd, view[written:])


def copy_hashing(
    stream: IO[bytes], fd: int, *, digest: _Hash | None = None, size: int = 0
) -> tuple[str, int]:
    """Copy ``stream`` to the open file descriptor ``fd`` while hashing; (sha256, size).

    The caller fsyncs ``fd``; this only writes, so the bytes are read once and hashed as
    they pass. ``digest`` and ``size`` continue a copy whose first bytes were handled
    already (see :func:`read_head`).
    """
    digest = digest or hashlib.sha256()
    buffer, view = _buffer()
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
        write_all(fd, chunk)
        size += count
    return digest.hexdigest(), size


#: Files at least this large are copied by the kernel while being hashed (two threads);
#: below it one pass through one buffer costs less than starting a thread.
KERNEL_COPY_FROM = 8 * CHUNK_SIZE
#: The kernel copies (and starts writing back) this much at a time: large enough that
#: each step is cheap, small enough that the disk starts writing early.
COPY_STEP = 64 * CHUNK_SIZE
#: Hashing reads this much per call: fewer system calls on a file the copy also reads.
HASH_READ = 4 * CHUNK_SIZE
#: errno values meaning "no kernel copy between these two files": then bytes go through
#: a buffer instead.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


def _kernel_copy(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes from ``src`` to ``dst`` (both at offset 0), flushing each step.

    ``copy_file_range`` keeps the bytes in the kernel (and reads what the hashing has just
    brought into the page cache); each step's ``fdatasync`` lets the disk write it while
    the rest is still being hashed, so the final fsync has little left to do.
    """
    offset = 0
    kernel = hasattr(os, "copy_file_range")
    while offset < size:
        step = min(COPY_STEP, size - offset)
        copied = 0
        if kernel:
            try:
                copied = os.copy_file_range(src, dst, step, offset, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                kernel = False
        if not kernel:
            data = os.pread(src, step, offset)
            os.pwrite(dst, data, offset)
            copied = len(data)
        if not copied:
            break  # the file shrank while copied: the caller's fstat check says so
        offset += copied
        os.fdatasync(dst)


def copy_file_hashing(src: int, dst: int) -> tuple[str, int]:
    """Copy the regular file open at ``src`` into ``dst`` while hashing it; (sha256, size).

    The kernel copies in a second thread while this one hashes the same bytes. The caller
    checks that the file did not change meanwhile (its size and mtime before and after)
    and fsyncs ``dst``.
    """
    size = os.fstat(src).st_size
    failure: list[BaseException] = []

    def copy() -> None:
        try:
            _kernel_copy(src, dst, size)
        except BaseException as exc:  # handed to the hashing thread, which raises it
            failure.append(exc)

    copier = threading.Thread(target=copy, name="stepkit-copy", daemon=True)
    copier.start()
    try:
        digest = hashlib.sha256()
        buffer = bytearray(HASH_READ)
        view = memoryview(buffer)
        offset = 0
        while count := os.preadv(src, [buffer], offset):
            digest.update(view[:count])
            offset += count
    finally:
        copier.join()
    if failure:
        raise failure[0]
    return digest.hexdigest(), offset


def hash_bytes(data: bytes) -> str:
    """sha256 hex of ``data``."""
    return hashlib.sha256(data).hexdigest()
