"""Running uv: where its binary is, the settings every call gets, and pip's index as uv's.

uv does not read pip's configuration, yet the machine's package index is set up there
(``pip.conf``, ``PIP_*`` variables). :func:`index_options` asks pip itself
(``python -m pip config list``) and turns what it says into uv options, once per process,
so an environment resolves against the same index a ``pip install`` would.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from stepkit.errors import UvNotInstalledError

#: uv's own index settings: when any is set, the user has configured uv and pip's is not used.
UV_INDEX_VARIABLES: Final = (
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
)


@dataclass(frozen=True, slots=True)
class UvResult:
    """What one uv call did: its exit code and its output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@functools.cache
def uv_binary() -> Path:
    """The uv executable shipped by the ``uv`` package (the ``envs`` extra)."""
    try:
        # Function-level: uv is an optional dependency, needed only when environments are built.
        from uv import find_uv_bin
    except ImportError as exc:
        raise UvNotInstalledError() from exc
    try:
        return Path(find_uv_bin())
    except FileNotFoundError as exc:
        raise UvNotInstalledError() from exc


def uv_environment() -> dict[str, str]:
    """The environment uv runs with: never download an interpreter, quiet, no colours."""
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    env.setdefault("NO_COLOR", "1")
    # A virtual environment stepkit runs in must not leak into the ones it builds.
    env.pop("VIRTUAL_ENV", None)
    cert = pip_settings().get("cert")
    if cert and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = cert  # pip trusts this bundle; let uv trust it too
    return env


def run_uv(args: Sequence[str], *, stdin: str | None = None, timeout: float = 900.0) -> UvResult:
    """Run ``uv ARGS`` and return what it did (a failure is a result, not an exception)."""
    completed = subprocess.run(
        [str(uv_binary()), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=uv_environment(),
        timeout=timeout,
        check=False,
    )
    return UvResult(completed.returncode, completed.stdout, completed.stderr)


def index_options() -> tuple[str, ...]:
    """uv options for the package index pip is configured with (none if uv is configured).

    pip merges every index it knows and picks the best version among them; uv by default
    takes a package from the first index that has it, so with more than one index the
    options ask uv to do as pip does (``--index-strategy unsafe-best-match``).
    """
    if any(os.environ.get(name) for name in UV_INDEX_VARIABLES):
        return ()
    return _options_from_pip(pip_settings())


def _options_from_pip(settings: Mapping[str, str]) -> tuple[str, ...]:
    options: list[str] = []
    if settings.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        options.append("--no-index")
    index = settings.get("index-url")
    if index:
        options += ["--default-index", index.split()[0]]
    extras = settings.get("extra-index-url", "").split()
    for url in extras:
        options += ["--index", url]
    for link in settings.get("find-links", "").split():
        options += ["--find-links", link]
    for constraint in settings.get("constraint", "").split():
        if Path(constraint).is_file():
            options += ["--constraint", constraint]
    if extras or settings.get("find-links"):
        options += ["--index-strategy", "unsafe-best-match"]
    return tuple(options)


@functools.cache
def pip_settings() -> Mapping[str, str]:
    """pip's effective settings for ``install``: variables over ``[install]`` over ``[global]``."""
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):  # no usable pip: uv's own defaults apply
        return {}
    if completed.returncode != 0:
        return {}
    return parse_pip_config(completed.stdout)


def parse_pip_config(text: str) -> dict[str, str]:
    """``pip config list`` output (``global.index-url='…'`` lines) → key → value."""
    rank = {":env:": 3, "install": 2, "global": 1}
    best: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition("=")
        if not sep or "." not in name:
            continue
        section, _, key = name.rpartition(".")
        weight = rank.get(section)
        if weight is None:
            continue
        value = raw.strip().strip("'\"")
        if key not in best or weight > best[key][0]:
            best[key] = (weight, value)
    return {key: value for key, (_, value) in best.items()}
