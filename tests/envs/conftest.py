"""Fixtures of the environment tests: a store on tmp_path, interpreters the tests need."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stepkit.envs import EnvStore, find_interpreters
from stepkit.envs.interpreters import Interpreter


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> EnvStore:
    """One store for a test module, so an environment several tests read is built once."""
    return EnvStore(tmp_path_factory.mktemp("envs"))


@pytest.fixture
def store(tmp_path: Path) -> EnvStore:
    return EnvStore(tmp_path / "envs")


def require_interpreter(minor: tuple[int, int]) -> Interpreter:
    """A local interpreter of this minor version; CI (``CI=true``) must have it, elsewhere
    its absence skips the test, saying which one is missing."""
    for interpreter in find_interpreters():
        if interpreter.minor == minor:
            return interpreter
    version = ".".join(map(str, minor))
    message = f"no local Python {version} (on PATH, in pyenv's versions or uv-managed)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs this interpreter: {message}", pytrace=False)
    pytest.skip(message)


def run_in(python: Path, code: str) -> str:
    """What ``python -c code`` prints (stripped); fails the test when it fails."""
    completed = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def require_sandbox() -> None:
    """bubblewrap that runs here; CI must have it, elsewhere its absence skips the test."""
    from stepkit import sandbox

    why = sandbox.unavailable()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs the sandbox: {why}", pytrace=False)
    pytest.skip(why)
