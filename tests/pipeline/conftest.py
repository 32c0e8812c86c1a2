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
