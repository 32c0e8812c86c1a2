from __future__ import annotations

import subprocess
import sys

from stepkit.cli import main  # noqa: F401  (the console entry point imports)


def test_import_stepkit_is_light() -> None:
    code = "import sys, stepkit; print(sorted(m for m in ('pydantic','typer','rich','sqlite3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
