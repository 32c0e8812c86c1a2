from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepkit.state import SQLiteStateRepository


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SQLiteStateRepository]:
    repo = SQLiteStateRepository(tmp_path / "state.db")
    yield repo
    repo.close()


@pytest.fixture
def temp_root(tmp_path: Path) -> Path:
    root = tmp_path / "tmp"
    root.mkdir()
    return root


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run given no state records under the current folder: make that a fresh one."""
    monkeypatch.chdir(tmp_path)
