"""The local Python interpreters an environment can be built on, found without downloading any.

Looked for in three places: ``python3.X`` names on ``PATH`` (pyenv's shims skipped: they
only work for the versions pyenv has activated, and pyenv's versions are searched
directly), pyenv's versions (``$PYENV_ROOT/versions``, else ``~/.pyenv/versions``) and
the interpreters uv manages (``uv python list --only-installed``). Each is asked for its
version by running it once; one interpreter per minor version is kept (stepkit's own for
its minor version, else the newest patch release).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The oldest Python an environment is built on (the child bootstrap supports it).
MINIMUM_VERSION: Final = (3, 8)

_PYTHON_NAME = re.compile(r"^python3(\.\d+)?$")
_PROBE = (
    "import json, os, platform, sys;"
    "base = getattr(sys, '_base_executable', None) or sys.executable;"
    "print(json.dumps({'version': list(sys.version_info[:3]),"
    " 'implementation': platform.python_implementation().lower(),"
    " 'path': os.path.realpath(base if os.path.exists(base) else sys.executable)}))"
)


def version_matches(version: tuple[int, ...], request: str | None) -> bool:
    """Whether a Python version fits a request such as ``3.9`` or ``3.9.18`` (None: any)."""
    if not request:
        return True
    wanted = tuple(int(part) for part in request.split(".") if part.isdigit())
    return version[: len(wanted)] == wanted


@dataclass(frozen=True, slots=True)
class Interpreter:
    """A Python interpreter on this machine: its real path, version and implementation."""

    path: Path
    version: tuple[int, int, int]
    implementation: str = "cpython"
    own: bool = False  # the interpreter stepkit itself runs on

    @property
    def version_text(self) -> str:
        return ".".join(str(part) for part in self.version)

    @property
    def minor(self) -> tuple[int, int]:
        return (self.version[0], self.version[1])

    def matches(self, request: str | None) -> bool:
        """Whether this interpreter fits a version request such as ``3.9`` or ``3.9.18``."""
        return version_matches(self.version, request)


def own_interpreter() -> Interpreter:
    """The interpreter stepkit runs on (its base, when stepkit runs in a virtual environment)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    path = os.path.realpath(base if os.path.exists(base) else sys.executable)
    major, minor, micro = sys.version_info[:3]
    return Interpreter(
        path=Path(path),
        version=(major, minor, micro),
        implementation=sys.implementation.name,
        own=True,
    )


def find_interpreters(*, request: str | None = None) -> list[Interpreter]:
    """The interpreters to try, in order: stepkit's own first, then newest to oldest.

    Only those matching ``request`` (a version prefix) and at least :data:`MINIMUM_VERSION`.
    """
    own = own_interpreter()
    found = [own, *probe(candidate_paths(exclude={own.path}))]
    chosen: dict[tuple[str, tuple[int, int]], Interpreter] = {}
    for interpreter in found:
        if interpreter.minor < MINIMUM_VERSION or not interpreter.matches(request):
            continue
        slot = (interpreter.implementation, interpreter.minor)
        current = chosen.get(slot)
        if current is None or (not current.own and interpreter.version > current.version):
            chosen[slot] = interpreter
    ordered = sorted(chosen.values(), key=lambda i: (not i.own, tuple(-v for v in i.version)))
    return ordered


def candidate_paths(*, exclude: Iterable[Path] = ()) -> list[Path]:
    """Executable paths that may be interpreters, deduplicated by real path."""
    seen = {Path(os.path.realpath(path)) for path in exclude}
    paths: list[Path] = []
    for path in (*_on_path(), *_pyenv_versions(), *_uv_managed()):
        real = Path(os.path.realpath(path))
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        paths.append(path)
    return paths


def probe(paths: Iterable[Path], *, timeout: float = 20.0) -> list[Interpreter]:
    """Ask each executable for its version, all at once; those that do not answer are skipped."""
    running: list[subprocess.Popen[str]] = []
    for path in paths:
        try:
            process = subprocess.Popen(
                [str(path), "-I", "-c", _PROBE],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        except OSError:  # not executable after all: not an interpreter
            continue
        running.append(process)
    found: list[Interpreter] = []
    for process in running:
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            continue
        interpreter = _parse_probe(out) if process.returncode == 0 else None
        if interpreter is not None:
            found.append(interpreter)
    return found


def _parse_probe(text: str) -> Interpreter | None:
    try:
        data = json.loads(text.strip().splitlines()[-1])
        major, minor, micro = (int(part) for part in data["version"])
        return Interpreter(
            path=Path(data["path"]),
            version=(major, minor, micro),
            implementation=str(data["implementation"]),
        )
    except (IndexError, KeyError, TypeError, ValueError):  # a program that is not Python
        return None


def pyenv_root() -> Path:
    """Where pyenv keeps its versions (what ``pyenv root`` prints, without running it)."""
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _on_path() -> Iterator[Path]:
    shims = pyenv_root() / "shims"
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or Path(folder) == shims:
            continue
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if _PYTHON_NAME.match(name):
                yield Path(folder) / name


def _pyenv_versions() -> Iterator[Path]:
    yield from _installs(pyenv_root() / "versions")


def _uv_managed() -> Iterator[Path]:
    from stepkit.envs.uvtool import run_uv

    # The folder of uv's managed interpreters, listed here: ``uv python list`` would probe
    # every pyenv shim on PATH again (seconds), even when asked for managed ones only.
    result = run_uv(["python", "dir"], timeout=60)
    if not result.ok or not result.stdout.strip():
        return
    yield from _installs(Path(result.stdout.strip()))


def _installs(folder: Path) -> Iterator[Path]:
    """``<folder>/<version>/bin/python3`` for each install not older than the minimum."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        version = re.search(r"(\d+)\.(\d+)", entry.name)
        if version and (int(version[1]), int(version[2])) < MINIMUM_VERSION:
            continue  # too old to be used: not worth starting
        executable = entry / "bin" / "python3"
        if executable.exists():
            yield executable
