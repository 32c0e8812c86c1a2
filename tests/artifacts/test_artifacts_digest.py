from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import IO, Any, cast

import pytest

from stepkit.artifacts import ArtifactStore
from stepkit.artifacts.digest import hash_stream, validate_digest
from stepkit.errors import InvalidDigestError

GOOD = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    "bad",
    [
        "../" + GOOD[3:],
        "../../etc/passwd",
        GOOD[:63],
        GOOD + "0",
        GOOD.upper(),
        "",
        "ab/" + GOOD[3:],
        GOOD[:62] + "\n",
    ],
)
def test_bad_digests_are_refused_before_any_path_is_built(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidDigestError) as caught:
        store.path(bad)
    assert caught.value.value == bad
    assert "expected 64 lowercase hex characters" in str(caught.value)
    for call in (store.exists, store.open, store.where):
        with pytest.raises(InvalidDigestError):
            call(bad)
    # nothing was created outside the root
    assert not (store.root.parent / "etc").exists()


def test_error_message_is_one_line() -> None:
    with pytest.raises(InvalidDigestError) as caught:
        validate_digest("../x")
    assert str(caught.value) == (
        "Invalid SHA-256 digest '../x': expected 64 lowercase hex characters."
    )


def test_non_string_digest() -> None:
    with pytest.raises(InvalidDigestError):
        validate_digest(None)


def test_stream_hash_matches_hashlib_across_chunks() -> None:
    data = bytes(range(256)) * 9000  # > 2 MiB: several 1 MiB chunks
    assert hash_stream(io.BytesIO(data)) == (hashlib.sha256(data).hexdigest(), len(data))


@pytest.mark.parametrize("size", [0, 1, 4 * 1024 * 1024, 9 * 1024 * 1024 + 3])
def test_kernel_copy_while_hashing_matches_hashlib(tmp_path: Path, size: int) -> None:
    from stepkit.artifacts.digest import copy_file_hashing

    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    with open(tmp_path / "src", "rb") as src, open(tmp_path / "dst", "wb") as dst:
        assert copy_file_hashing(src.fileno(), dst.fileno()) == (
            hashlib.sha256(data).hexdigest(),
            size,
        )
    assert (tmp_path / "dst").read_bytes() == data


def test_read_head_fills_one_chunk_from_short_reads() -> None:
    from stepkit.artifacts.digest import CHUNK_SIZE, read_head

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            count = min(len(buffer), 1000, len(self.data))
            buffer[:count] = self.data[:count]
            self.data = self.data[count:]
            return count

    assert bytes(read_head(cast("IO[bytes]", Trickle(b"z" * 2500)))) == b"z" * 2500
    assert len(read_head(cast("IO[bytes]", Trickle(b"z" * (CHUNK_SIZE + 7))))) == CHUNK_SIZE
