"""Partitioned sections: decoded a partition at a time, written back as read unless
changed, and copies that share partitions until one changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.catalog.partitioned import PARTITIONS, PartitionedDict, partition_of, pieces_of


def _split(blob: bytes) -> list[bytes]:
    """The length-prefixed partitions of a stored dict."""
    out, offset = [], 0
    while offset < len(blob):
        length = int.from_bytes(blob[offset : offset + 4], "little")
        out.append(blob[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


def test_round_trip_and_only_changed_partitions_are_encoded_again() -> None:
    values = {f"/steps/specs/s{i}_spec.py": bytes([i % 256]) * 20 for i in range(500)}
    blob = b"".join(PartitionedDict(values).pieces())
    assert PartitionedDict.decode(b"".join(pieces_of(values))) == values  # stored alike
    assert len(_split(blob)) == PARTITIONS
    loaded = PartitionedDict.decode(blob)
    assert loaded == values and len(loaded) == 500
    loaded["/steps/specs/s3_spec.py"] = b"new"
    del loaded["/steps/specs/s4_spec.py"]
    again = b"".join(loaded.pieces())
    changed = {partition_of("/steps/specs/s3_spec.py"), partition_of("/steps/specs/s4_spec.py")}
    before, after = _split(blob), _split(again)
    assert [i for i in range(PARTITIONS) if before[i] != after[i]] == sorted(changed)
    assert PartitionedDict.decode(again) == {
        **{k: v for k, v in values.items() if k != "/steps/specs/s4_spec.py"},
        "/steps/specs/s3_spec.py": b"new",
    }


def test_a_copy_shares_partitions_until_either_changes() -> None:
    original = PartitionedDict({"a": [1], "b": [2], "c": [3]})
    copy = original.copy()
    copy["a"] = [9]
    del copy["b"]
    original["c"] = [4]
    assert dict(original) == {"a": [1], "b": [2], "c": [4]}
    assert dict(copy) == {"a": [9], "c": [3]}
    with pytest.raises(KeyError):
        del copy["b"]


@pytest.mark.parametrize(
    "damage", [lambda b: b[:-1], lambda b: b + b"\0", lambda b: b[:10], lambda b: b"\xff" * 8]
)
def test_broken_bytes_are_refused(damage: object) -> None:
    blob = b"".join(PartitionedDict({"k": 1}).pieces())
    assert callable(damage)
    with pytest.raises(ValueError):
        loaded = PartitionedDict.decode(damage(blob))
        dict(loaded)  # a partition that does not decode is refused when read


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text(max_size=12), st.binary(max_size=8), max_size=40),
    st.lists(st.tuples(st.text(max_size=12), st.none() | st.binary(max_size=8)), max_size=20),
)
def test_it_behaves_like_a_dict(
    start: dict[str, bytes], edits: list[tuple[str, bytes | None]]
) -> None:
    model = dict(start)
    stored = PartitionedDict.decode(b"".join(PartitionedDict(start).pieces()))
    for key, value in edits:
        if value is None:
            model.pop(key, None)
            stored.pop(key, None)
        else:
            model[key] = value
            stored[key] = value
    assert stored == model and sorted(stored) == sorted(model)
    assert PartitionedDict.decode(b"".join(stored.pieces())) == model
