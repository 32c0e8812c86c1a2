"""The lock of an environment: the exact versions it was built with, one pin a line.

Written from ``uv pip freeze`` after a build (``requirements.lock`` inside the
environment's folder, beside its interpreter), with ``#`` comment lines saying what it
was built from. Comments aside it is a requirements file, so ``uv pip sync`` rebuilds the
same set; its digest (of the pins only) is what a step's cache key records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from stepkit.atomic import atomic_write_text
from stepkit.errors import EnvironmentLockError

LOCK_FILE: Final = "requirements.lock"


@dataclass(frozen=True, slots=True)
class Lock:
    """The pins of an environment and what they were resolved for."""

    pins: tuple[str, ...]
    python: str  # the interpreter's version, e.g. "3.9.18"
    exclude_newer: dt.date | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of the pins alone (sorted, one a line): the same set, the same digest."""
        text = "\n".join(sorted(self.pins)) + "\n"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def version_of(self, name: str) -> str | None:
        """The pinned version of a distribution (its normalized name), if it is pinned."""
        from stepkit.envs.spec import normalize_name

        for pin in self.pins:
            pinned, sep, version = pin.partition("==")
            if sep and normalize_name(pinned) == normalize_name(name):
                return version.strip()
        return None

    def render(self, *, requirements: Iterable[str]) -> str:
        header = [
            "# stepkit environment lock: the versions this environment was built with.",
            f"# requirements: {', '.join(requirements) or '(none)'}",
            f"# python: {self.python}",
        ]
        if self.exclude_newer is not None:
            header.append(f"# exclude-newer: {self.exclude_newer.isoformat()}")
        return "\n".join([*header, *self.pins]) + "\n"


def parse_freeze(text: str) -> tuple[str, ...]:
    """The pins in ``uv pip freeze`` output (or a lock file), sorted, comments dropped."""
    pins = {line.strip() for line in text.splitlines()}
    return tuple(sorted(pin for pin in pins if pin and not pin.startswith("#")))


def write_lock(folder: Path, lock: Lock, *, requirements: Iterable[str]) -> Path:
    """Write the lock into an environment's folder, atomically."""
    path = folder / LOCK_FILE
    atomic_write_text(path, lock.render(requirements=requirements))
    return path


def read_lock(path: Path) -> Lock:
    """Read a lock file back; a file without pins or a python line is refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvironmentLockError(path, f"cannot be read: {exc.strerror or exc}") from exc
    python = ""
    exclude_newer: dt.date | None = None
    for line in text.splitlines():
        key, sep, value = line.removeprefix("#").partition(":")
        if not line.startswith("#") or not sep:
            continue
        if key.strip() == "python":
            python = value.strip()
        elif key.strip() == "exclude-newer":
            try:
                exclude_newer = dt.date.fromisoformat(value.strip())
            except ValueError as exc:
                raise EnvironmentLockError(
                    path, f"bad exclude-newer date {value.strip()!r}"
                ) from exc
    pins = parse_freeze(text)
    if not pins or not python:
        raise EnvironmentLockError(path, "is not a stepkit lock (no pins, or no '# python:' line)")
    return Lock(pins=pins, python=python, exclude_newer=exclude_newer)
