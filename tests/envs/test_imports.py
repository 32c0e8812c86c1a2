"""The import check maps distributions to what they install, as the metadata says."""

from __future__ import annotations

import sys
from pathlib import Path

from stepkit.envs.imports import check_imports


def test_distributions_whose_import_name_differs_are_checked() -> None:
    # scikit-learn → sklearn, PyYAML → yaml (top_level.txt or RECORD), typing-extensions → file
    python = Path(sys.executable)
    assert check_imports(python, ["scikit-learn", "pyyaml", "typing-extensions", "six"]) == []


def test_a_missing_distribution_is_reported() -> None:
    failures = check_imports(Path(sys.executable), ["surely-not-installed-dist"])
    assert [f.describe() for f in failures] == [
        "surely-not-installed-dist does not import: not installed"
    ]
