"""Shared fixtures: projects written on tmp_path, the CLI runner, a clean registry context."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stepkit.registry import step_names

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "churn"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the caller's STEPKIT_* variables or another test's installed registry."""
    import os

    for var in [v for v in os.environ if v.startswith("STEPKIT_")]:
        monkeypatch.delenv(var)
    step_names.set_registry(None)
    yield
    step_names.set_registry(None)


WriteProject = Callable[..., Path]


@pytest.fixture
def write_project(tmp_path: Path) -> WriteProject:
    """Write a project: ``files`` maps relative paths to (dedented) text."""

    def write(files: dict[str, str], *, root: Path | None = None) -> Path:
        base = root or tmp_path / "project"
        for rel, text in files.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return base

    return write


@pytest.fixture
def example_project() -> Path:
    return EXAMPLE
