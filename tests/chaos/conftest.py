"""Fixtures that damage stores the way disks and people do: a read-only folder, a full disk.

Both need a file system of their own, so they mount a small tmpfs (as root only: elsewhere
the tests that need them skip, saying why).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(target: Path, *options: str) -> None:
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()})")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system (a tmpfs), for a full disk; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a tmpfs of its own, which only root may mount")
    target = tmp_path / "disk"
    target.mkdir()
    _mount(target, "size=2m", "mode=0755")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def remount_read_only(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs folder, made read-only by :func:`make_read_only` (``mount -o remount,ro``)
    where the test runs as root; elsewhere ``chmod`` makes the same folder read-only."""
    target = tmp_path / "ro"
    target.mkdir()
    mounted = os.geteuid() == 0
    if mounted:
        _mount(target, "size=16m", "mode=0755")
    try:
        yield target
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(target)], check=False)
        else:
            for path in [target, *target.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
