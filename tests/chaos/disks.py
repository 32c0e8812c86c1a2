"""Making a folder read-only the way a read-only mount is (see ``conftest.remount_read_only``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def make_read_only(folder: Path) -> None:
    """Make ``folder`` (from :func:`remount_read_only`) and everything in it read-only."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        return
    for path in sorted(folder.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    folder.chmod(0o555)
