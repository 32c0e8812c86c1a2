"""The lock file: rendered, read back, and refused when it is not one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from stepkit.envs.lockfile import Lock, parse_freeze, read_lock, write_lock
from stepkit.errors import EnvironmentLockError


def test_a_lock_round_trips_through_its_file(tmp_path: Path) -> None:
    lock = Lock(
        pins=("pip==24.0", "six==1.10.0"), python="3.9.18", exclude_newer=dt.date(2021, 1, 1)
    )
    path = write_lock(tmp_path, lock, requirements=["six==1.10.0"])
    text = path.read_text()
    assert "# exclude-newer: 2021-01-01" in text
    assert text.endswith("pip==24.0\nsix==1.10.0\n")
    again = read_lock(path)
    assert again == lock
    assert again.digest == lock.digest
    assert again.version_of("SIX") == "1.10.0"


def test_the_digest_is_of_the_pins_alone() -> None:
    a = Lock(pins=("a==1", "b==2"), python="3.11.7")
    b = Lock(pins=("b==2", "a==1"), python="3.11.7", exclude_newer=dt.date(2020, 1, 1))
    assert a.digest == b.digest
    assert a.digest != Lock(pins=("a==1", "b==3"), python="3.11.7").digest


def test_freeze_output_is_sorted_and_comments_dropped() -> None:
    assert parse_freeze("six==1.10.0\n# note\n\npip==24.0\n") == ("pip==24.0", "six==1.10.0")


def test_a_file_that_is_not_a_lock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "requirements.lock"
    path.write_text("six==1.10.0\n")
    with pytest.raises(EnvironmentLockError, match=r"requirements.lock: is not a stepkit lock"):
        read_lock(path)
    with pytest.raises(EnvironmentLockError, match="cannot be read"):
        read_lock(tmp_path / "missing.lock")


def test_rebuilding_from_a_lock_needs_its_interpreter(tmp_path: Path) -> None:
    from stepkit.envs import rebuild_from_lock

    path = write_lock(tmp_path, Lock(pins=("six==1.10.0",), python="3.9.18"), requirements=[])
    with pytest.raises(EnvironmentLockError, match=r"no interpreter recorded beside it"):
        rebuild_from_lock(path, target=tmp_path / "env")
    assert not (tmp_path / "env").exists()
