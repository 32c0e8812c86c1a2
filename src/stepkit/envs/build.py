"""Building a step's environment with uv: pick an interpreter, resolve, install, check, lock.

For each interpreter (stepkit's own first, then the others newest to oldest; see
:mod:`stepkit.envs.interpreters`) a virtual environment is made in a temp folder beside
its final place and the requirements, plus pip, are installed into it by uv. Installs
take wheels only in a first round over all interpreters — an old pin without wheels for
a new Python moves on to an older Python instead of compiling for minutes — and only
when no interpreter has wheels, a second round lets uv build from source. An install
whose packages do not import is resolved again as of an earlier date
(:mod:`stepkit.envs.dates`). The first environment that installs and imports is locked
(:mod:`stepkit.envs.lockfile`) and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.envs.dates import Outcome, newest_working_date
from stepkit.envs.imports import check_imports
from stepkit.envs.interpreters import Interpreter, find_interpreters, own_interpreter
from stepkit.envs.lockfile import Lock, parse_freeze, read_lock, write_lock
from stepkit.envs.spec import EnvSpec, env_key, wanted_spec
from stepkit.envs.store import Environment, EnvStore
from stepkit.envs.uvtool import index_options, run_uv
from stepkit.errors import EnvironmentBuildError, EnvironmentLockError

if TYPE_CHECKING:
    from stepkit.components import ScriptContract

#: Progress callback: one short line saying what the build is doing now.
Progress = Callable[[str], None]
#: What a wheels-only failure's reason says when building from source would have been needed.
_NEEDS_BUILD = "no usable wheels"


@dataclass(frozen=True, slots=True)
class _Attempt:
    """The result of installing into one temp folder: it works, or why not."""

    folder: Path
    outcome: Outcome
    reason: str = ""


def ensure_environment(
    spec: EnvSpec, *, store: EnvStore, progress: Progress | None = None
) -> Environment:
    """The environment for ``spec``: the one built before, else built now (once, even when
    several processes ask at the same time: the second waits for the first and reuses it)."""
    found = store.lookup(spec)
    if found is not None:
        return found
    with store.build_lock(spec):
        found = store.lookup(spec)
        if found is not None:
            return found
        return build_environment(spec, store=store, progress=progress)


def step_environment(
    contract: ScriptContract, *, store: EnvStore, progress: Progress | None = None
) -> Environment | None:
    """The environment a step's contract declares, built if missing; None when it declares
    no ``framework_requirements`` nor another ``python`` (it runs in stepkit's own).

    ``.python`` is what its script runs on; ``.identity`` goes into the step's cache key.
    """
    spec = wanted_spec(contract)
    if spec is None:
        return None
    return ensure_environment(spec, store=store, progress=progress)


def build_environment(
    spec: EnvSpec, *, store: EnvStore, progress: Progress | None = None
) -> Environment:
    """Build an environment for ``spec`` (see the module docstring for the order of tries).

    Raises:
        EnvironmentBuildError: no interpreter gives an environment that installs and imports.
    """
    say = progress or (lambda _message: None)
    failures: list[tuple[Interpreter, str]] = []
    tried: list[Interpreter] = []
    lacking_wheels: list[Interpreter] = []
    for interpreter in _candidates(spec, say):
        tried.append(interpreter)
        say(f"Python {interpreter.version_text}: installing (wheels only)")
        built = _build_on(spec, interpreter, store=store, wheels_only=True, say=say)
        if isinstance(built, Environment):
            return built
        failures.append((interpreter, built))
        if _NEEDS_BUILD in built:
            lacking_wheels.append(interpreter)
    # Building from source helps only where wheels were what was missing.
    for interpreter in lacking_wheels:
        say(f"Python {interpreter.version_text}: installing (building from source allowed)")
        built = _build_on(spec, interpreter, store=store, wheels_only=False, say=say)
        if isinstance(built, Environment):
            return built
    raise _build_error(spec, failures, tried)


def rebuild_from_lock(lock_path: Path, *, target: Path, interpreter: Path | None = None) -> Lock:
    """Make a virtual environment at ``target`` with exactly the versions of a lock file.

    The interpreter is the one recorded beside the lock (``stepkit-env.json``) unless
    given. Returns the lock of the new environment, read back from it.
    """
    lock = read_lock(lock_path)
    python = interpreter or _recorded_interpreter(lock_path)
    subject = f"the lock {lock_path}"
    _uv(["venv", "--relocatable", "--quiet", "--python", str(python), str(target)], subject)
    result = run_uv(
        ["pip", "sync", "--python", str(target / "bin" / "python"), *index_options(), "-"],
        stdin="\n".join(lock.pins) + "\n",
    )
    if not result.ok:
        raise EnvironmentBuildError(subject, tried=[lock.python], reason=_reason(result.stderr))
    freeze = _uv(["pip", "freeze", "--python", str(target / "bin" / "python")], subject)
    return Lock(pins=parse_freeze(freeze), python=lock.python, exclude_newer=lock.exclude_newer)


# -- one interpreter ------------------------------------------------------------------------


def _build_on(
    spec: EnvSpec, interpreter: Interpreter, *, store: EnvStore, wheels_only: bool, say: Progress
) -> Environment | str:
    """The environment built on ``interpreter``, or the reason it cannot be."""
    key = env_key(spec, interpreter)
    attempt = _attempt(spec, interpreter, store=store, key=key, wheels_only=wheels_only)
    exclude_newer: dt.date | None = None
    if attempt.outcome is Outcome.TOO_NEW:
        say(f"Python {interpreter.version_text}: {attempt.reason}; resolving as of earlier dates")
        shutil.rmtree(attempt.folder, ignore_errors=True)
        kept: list[_Attempt] = []

        def probe(day: dt.date) -> Outcome:
            say(f"Python {interpreter.version_text}: resolving as of {day.isoformat()}")
            tried = _attempt(
                spec, interpreter, store=store, key=key, wheels_only=wheels_only, exclude_newer=day
            )
            if tried.outcome is Outcome.WORKS:
                for old in kept:
                    shutil.rmtree(old.folder, ignore_errors=True)
                kept[:] = [tried]
            else:
                shutil.rmtree(tried.folder, ignore_errors=True)
            return tried.outcome

        try:
            exclude_newer = newest_working_date(probe, today=dt.date.today())
        except BaseException:
            for old in kept:
                shutil.rmtree(old.folder, ignore_errors=True)
            raise
        if exclude_newer is None:
            return attempt.reason
        attempt = kept[0]
    if attempt.outcome is not Outcome.WORKS:
        shutil.rmtree(attempt.folder, ignore_errors=True)
        return attempt.reason
    try:
        return _finish(
            spec, interpreter, attempt.folder, key=key, store=store, exclude_newer=exclude_newer
        )
    except BaseException:
        shutil.rmtree(attempt.folder, ignore_errors=True)
        raise


def _attempt(
    spec: EnvSpec,
    interpreter: Interpreter,
    *,
    store: EnvStore,
    key: str,
    wheels_only: bool,
    exclude_newer: dt.date | None = None,
) -> _Attempt:
    folder = store.new_temp_folder(key)
    try:
        venv = run_uv(
            ["venv", "--relocatable", "--quiet", "--allow-existing",
             "--python", str(interpreter.path), str(folder)]
        )  # fmt: skip
        if not venv.ok:  # a broken interpreter: the next one may do
            return _Attempt(folder, Outcome.TOO_OLD, f"uv venv failed: {_reason(venv.stderr)}")
        args = ["pip", "install", "--python", str(folder / "bin" / "python"), *index_options()]
        if wheels_only:
            args.append("--no-build")
        if exclude_newer is not None:
            args += ["--exclude-newer", exclude_newer.isoformat()]
        result = run_uv([*args, "-r", "-"], stdin="\n".join(spec.install_lines) + "\n")
        if not result.ok:
            return _Attempt(folder, Outcome.TOO_OLD, _reason(result.stderr))
        failures = check_imports(folder / "bin" / "python", spec.names)
        if failures:
            return _Attempt(folder, Outcome.TOO_NEW, failures[0].describe())
        return _Attempt(folder, Outcome.WORKS)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _finish(
    spec: EnvSpec,
    interpreter: Interpreter,
    folder: Path,
    *,
    key: str,
    store: EnvStore,
    exclude_newer: dt.date | None,
) -> Environment:
    freeze = _uv(["pip", "freeze", "--python", str(folder / "bin" / "python")], spec.describe())
    lock = Lock(
        pins=parse_freeze(freeze), python=interpreter.version_text, exclude_newer=exclude_newer
    )
    write_lock(folder, lock, requirements=spec.requirements)
    environment = Environment(
        key=key,
        path=store.root / key,
        requirements=spec.requirements,
        python_version=interpreter.version_text,
        base_interpreter=interpreter.path,
        lock_digest=lock.digest,
        exclude_newer=exclude_newer,
        created=dt.datetime.now(dt.UTC),
    )
    return store.install(folder, environment, spec)


# -- the parts ------------------------------------------------------------------------------


def _candidates(spec: EnvSpec, say: Progress) -> Iterator[Interpreter]:
    """stepkit's own interpreter first (when it fits the request), the others only if needed."""
    own = own_interpreter()
    if own.matches(spec.python):
        yield own
    say("looking for other local interpreters")
    for interpreter in find_interpreters(request=spec.python):
        if not interpreter.own:
            yield interpreter


def _uv(args: list[str], subject: str) -> str:
    """uv's output; a failure is an error about ``subject`` (what was being built)."""
    result = run_uv(args)
    if not result.ok:
        reason = f"uv {' '.join(args[:2])} failed: {_reason(result.stderr)}"
        raise EnvironmentBuildError(subject, tried=[], reason=reason)
    return result.stdout


def _recorded_interpreter(lock_path: Path) -> Path:
    """The base interpreter in the ``stepkit-env.json`` beside a lock."""
    import json

    from stepkit.envs.store import METADATA_FILE

    try:
        data = json.loads((lock_path.parent / METADATA_FILE).read_text(encoding="utf-8"))
        return Path(str(data["base_interpreter"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnvironmentLockError(
            lock_path, f"no interpreter recorded beside it ({METADATA_FILE}); pass one"
        ) from exc


def _reason(stderr: str) -> str:
    """uv's explanation, on one line: its ``cause:`` (or last ``error:``) line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for marker in ("cause:", "Caused by:", "╰─▶", "error:"):
        for line in lines:
            if line.startswith(marker):
                text = line.removeprefix(marker).strip()
                if text and not text.startswith("No solution found"):
                    return text.rstrip(".")
    return (lines[-1] if lines else "uv failed without saying why").rstrip(".")


def _build_error(
    spec: EnvSpec, failures: list[tuple[Interpreter, str]], tried: list[Interpreter]
) -> EnvironmentBuildError:
    """One line: the declared requirement the failures name, what was said, what was tried."""
    if not tried:  # nothing to try: no local interpreter of the version asked for
        from stepkit.envs.interpreters import MINIMUM_VERSION

        oldest = ".".join(map(str, MINIMUM_VERSION))
        return EnvironmentBuildError(
            f"Python {spec.python}",
            tried=[],
            reason=f"no local interpreter of that version (Python {oldest} or later, on PATH, "
            "in pyenv's versions or uv-managed; stepkit never downloads one)",
        )
    # The own interpreter's wheels-only failure is the most telling; else the first one.
    reason = failures[0][1] if failures else "no local interpreter fits the python asked for"
    requirement = _named_requirement(spec, reason)
    versions = [interpreter.version_text for interpreter in tried]
    return EnvironmentBuildError(requirement, tried=versions, reason=reason)


def _named_requirement(spec: EnvSpec, reason: str) -> str:
    lowered = reason.lower()
    best: tuple[int, str] | None = None
    for line, name in zip(spec.requirements, spec.names, strict=True):
        for spelling in {name, name.replace("-", "_"), name.replace("-", ".")}:
            match = re.search(rf"(?<![\w.-]){re.escape(spelling)}(?![\w-])", lowered)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), line)
    if best is not None:
        return best[1]
    return ", ".join(spec.requirements) or "(no requirements)"
