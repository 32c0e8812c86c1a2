"""``--against REV``: the same benchmark run on an earlier commit, in the same run.

The benchmark script (this tree's, so both sides are measured alike) runs again in a child
process with ``PYTHONPATH`` set to REV's ``src`` (checked out with ``git worktree add
--detach`` into a temp folder, removed afterwards), so ``import stepkit``, the ``stepkit``
command and every stage's child process are REV's code. Its JSON goes under
``"previous"`` beside this commit's figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def previous(script: str, rev: str, argv: list[str]) -> dict[str, Any]:
    """Run ``script`` with ``argv`` on commit ``rev``; its JSON, with the commit it ran."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="stepkit-previous-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
            capture_output=True,
            check=True,
        )
        try:
            env = {**os.environ, "PYTHONPATH": str(tree / "src")}
            done = subprocess.run(
                [sys.executable, script, *argv],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                capture_output=True,
                check=False,
            )
    figures: dict[str, Any] = json.loads(done.stdout)
    return {"commit": commit, **figures}


def split_against(argv: list[str]) -> tuple[str | None, list[str]]:
    """(REV or None, the other arguments) from a command line holding ``--against REV``."""
    if "--against" not in argv:
        return None, argv
    at = argv.index("--against")
    return argv[at + 1], argv[:at] + argv[at + 2 :]
