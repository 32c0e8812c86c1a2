"""Wrong arguments to finalize are refused before a byte is written, naming the argument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stepkit.artifacts import ArtifactStore
from stepkit.errors import ArtifactStoreError, InvalidRegistrationError

from .conftest import MakeFile


@pytest.mark.parametrize("value", [None, 7, ""])
@pytest.mark.parametrize("field", ["artifact_id", "source", "producer"])
def test_an_id_that_is_not_text_is_refused_before_anything_is_stored(
    store: ArtifactStore, make_file: MakeFile, field: str, value: Any
) -> None:
    fields: dict[str, Any] = {"artifact_id": "a", "source": "s", "producer": "p", field: value}
    source = make_file("data.csv", b"a,b\n1,2\n")
    with pytest.raises(InvalidRegistrationError) as caught:
        store.finalize(source, **fields)
    assert str(caught.value) == f"Invalid {field} {value!r}: it must be a non-empty string."
    assert list(store.catalog.records()) == []
    assert list(store.local.iter_objects()) == [] and source.exists()


def test_a_source_that_cannot_be_read_is_named(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactStoreError, match="no such file to finalize"):
        store.finalize(tmp_path / "missing.csv", artifact_id="a", source="s", producer="p")
