"""The interpreters environments can be built on: stepkit's own first, then newest first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stepkit.envs.interpreters import (
    MINIMUM_VERSION,
    Interpreter,
    find_interpreters,
    own_interpreter,
    probe,
)


def test_version_requests_match_by_prefix() -> None:
    interpreter = Interpreter(path=Path("/x/python3.9"), version=(3, 9, 18))
    assert interpreter.matches(None)
    assert interpreter.matches("3.9")
    assert interpreter.matches("3.9.18")
    assert not interpreter.matches("3.10")
    assert not interpreter.matches("3.9.17")


def test_own_interpreter_comes_first_then_newest_to_oldest() -> None:
    found = find_interpreters()
    assert found[0] == own_interpreter()
    assert found[0].version == tuple(sys.version_info[:3])
    rest = [i.version for i in found[1:]]
    assert rest == sorted(rest, reverse=True)
    assert all(i.minor >= MINIMUM_VERSION for i in found)
    minors = [(i.implementation, i.minor) for i in found]
    assert len(minors) == len(set(minors)), "one interpreter per minor version"


def test_a_request_keeps_only_matching_interpreters() -> None:
    own = own_interpreter()
    found = find_interpreters(request=f"{own.version[0]}.{own.version[1]}")
    assert [i.minor for i in found] == [own.minor]
    assert find_interpreters(request="2.7") == []


def test_pyenv_versions_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyenv root with a version in it (here a link to this interpreter) is searched."""
    own = own_interpreter()
    folder = tmp_path / "pyenv" / "versions" / own.version_text / "bin"
    folder.mkdir(parents=True)
    (folder / "python3").symlink_to(own.path)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    from stepkit.envs.interpreters import candidate_paths

    assert folder / "python3" in candidate_paths()


def test_programs_that_are_not_python_are_skipped(tmp_path: Path) -> None:
    fake = tmp_path / "python3.99"
    fake.write_text("#!/bin/sh\necho not python\n")
    fake.chmod(0o755)
    assert probe([fake, Path(sys.executable)]) == [
        Interpreter(
            path=own_interpreter().path,
            version=own_interpreter().version,
            implementation=own_interpreter().implementation,
        )
    ]
