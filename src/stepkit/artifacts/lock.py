"""The store lock: finalize holds it shared, gc scans under it shared and holds it
exclusive only to delete.

A finalize that found its object already present (a dedup hit) must not see that object
collected before its record commits; gc deletes only under the exclusive lock, so between
finalizes, and finalizes wait for a deleting gc. ``flock`` locks are released by the kernel
when a process dies, so a crash never leaves the store locked. A wait for the exclusive
lock is bounded: steady finalizes can keep it busy, and gc then says so instead of waiting
forever.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stepkit.artifacts.blobs import DENIED_ERRNOS, store_os_error
from stepkit.errors import StoreLockTimeoutError

LOCK_FILE = ".gc.lock"
#: How often a bounded wait tries the lock again.
_POLL_SECONDS = 0.05


@contextmanager
def store_lock(root: Path, *, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
    """Hold the store's lock (shared for finalize, exclusive for gc) for the block; with
    ``timeout`` (seconds), :class:`StoreLockTimeoutError` if it stays taken that long."""
    fd = _open(root, exclusive=exclusive)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if timeout is None:
            fcntl.flock(fd, mode)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreLockTimeoutError(root / LOCK_FILE, timeout) from None
                    time.sleep(_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _open(root: Path, *, exclusive: bool) -> int:
    """The lock file's descriptor. In a store this user may not write (a read-only mount)
    a shared lock is taken on the file opened read-only, so that reading commands still
    work; an exclusive lock, taken only to delete, says why it cannot be had."""
    path = root / LOCK_FILE
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exclusive or exc.errno not in DENIED_ERRNOS:
            raise store_os_error(exc, root=root, doing="lock") from exc
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:  # not there either: the first error says what is wrong
            raise store_os_error(exc, root=root, doing="lock") from exc
