"""The store lock: finalize holds it shared, gc holds it exclusive.

A finalize that found its object already present (a dedup hit) must not see that object
collected before its record commits; gc takes the lock exclusively, so it runs only
between finalizes, and finalizes wait for a running gc. ``flock`` locks are released by
the kernel when a process dies, so a crash never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".gc.lock"


@contextmanager
def store_lock(root: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the store's lock (shared for finalize, exclusive for gc) for the block."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
