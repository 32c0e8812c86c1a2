"""Fixtures of the catalog tests: synthetic projects written on tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from catalog.synth import Step, write_project

MakeProject = Callable[[Mapping[str, Sequence[Step]]], Path]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write a project of these workspaces (precedence order, the core last)."""

    def make(workspaces: Mapping[str, Sequence[Step]]) -> Path:
        return write_project(tmp_path / "project", workspaces)

    return make
