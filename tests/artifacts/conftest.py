"""Fixtures for the artifact store: a store on tmp_path and a factory for input files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from stepkit.artifacts import ArtifactStore

MakeFile = Callable[[str, bytes], Path]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    """A store with no grace period, so gc tests see their orphans at once."""
    with ArtifactStore(root=tmp_path / "store", grace=timedelta(0)) as s:
        yield s


@pytest.fixture
def make_file(tmp_path: Path) -> MakeFile:
    """Write ``data`` to ``<tmp>/in/<name>`` (folders created) and return the path."""

    def make(name: str, data: bytes) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return make
