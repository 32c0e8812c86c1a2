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

from stepkit.errors import StoreLockTimeoutError

LOCK_FILE = ".gc.lock"
#: How often a bounded wait tries the lock again.
_POLL_SECONDS = 0.05


@contextmanager
def store_lock(root: Path, *, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
    """Hold the store's lock (shared for finalize, exclusive for gc) for the block; with
    ``timeout`` (seconds), :class:`StoreLockTimeoutError` if it stays taken that long."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
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
