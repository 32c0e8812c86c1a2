from __future__ import annotations

import subprocess
import sys

from stepkit.cli import main  # noqa: F401  (the console entry point imports)


def test_import_stepkit_is_light() -> None:
    heavy = "('pydantic', 'typer', 'rich', 'sqlite3')"
    code = f"import sys, stepkit; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
