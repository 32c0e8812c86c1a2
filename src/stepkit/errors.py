"""Every error stepkit raises on purpose.

One root, :class:`StepkitError`; each subclass also subclasses the builtin a caller would
expect (``LookupError`` for an unknown name, ``ValueError`` for bad input), keeps the
offending value as an attribute, and renders as one line the CLI can print as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class StepkitError(Exception):
    """Root of every error stepkit raises on purpose; its message is one line.

    Picklable whatever a subclass's ``__init__`` takes (stage errors cross processes):
    unpickling restores the message and attributes without calling ``__init__`` again.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def validation_message(error: Mapping[str, Any]) -> str:
    """One error of a pydantic ``ValidationError`` (an item of ``exc.errors()``) as people
    read it: the words of the check that failed, without the kind pydantic puts before a
    validator's own words (``Value error, ``)."""
    message = str(error.get("msg", ""))
    for kind in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(kind)
    return message


def _rebuild(cls: type[StepkitError], args: tuple[Any, ...], state: dict[str, Any]) -> StepkitError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def _did_you_mean(suggestions: Iterable[str]) -> str:
    found = list(suggestions)
    return f" Did you mean {', '.join(repr(s) for s in found)}?" if found else ""


def _where(path: Path | str | None, line: int | None) -> str:
    if path is None:
        return ""
    return f"{path}:{line}: " if line else f"{path}: "


# -- project file ---------------------------------------------------------------------------


class ProjectNotFoundError(StepkitError, FileNotFoundError):
    """No ``stepkit.toml`` where one was looked for."""

    def __init__(self, start: Path) -> None:
        self.start = start
        super().__init__(
            f"No stepkit.toml found in {start} or any parent folder "
            "(use --project PATH or set STEPKIT_PROJECT)."
        )


class ProjectFileError(StepkitError, ValueError):
    """``stepkit.toml`` is malformed: names the file, the key (and line) and what is wrong."""

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        suggestions: Iterable[str] = (),
    ) -> None:
        self.path = path
        self.key = key
        self.line = line
        self.suggestions = list(suggestions)
        subject = f"{key}: " if key else ""
        super().__init__(f"{_where(path, line)}{subject}{message}{_did_you_mean(self.suggestions)}")


class UnknownWorkspaceError(StepkitError, LookupError):
    """A workspace id that the project does not declare."""

    def __init__(self, workspace_id: str, known: Iterable[str]) -> None:
        from stepkit.names import close_matches

        self.workspace_id = workspace_id
        self.known = list(known)
        self.suggestions = close_matches(workspace_id, self.known)
        hint = _did_you_mean(self.suggestions) or f" Known: {', '.join(self.known) or 'none'}."
        super().__init__(f"No workspace named {workspace_id!r}.{hint}")


# -- names and the registry -----------------------------------------------------------------


class UnknownStepError(StepkitError, KeyError, ValueError):
    """A step name the registry (or catalog) does not know; suggests close names.

    Both a ``KeyError`` (what ``STEP_NAMES[name]`` raised) and a ``ValueError`` (what the
    classic helper functions raised), so code written against the flat registry still works.
    """

    def __init__(self, name: str, known: Iterable[str], *, what: str = "step") -> None:
        from stepkit.names import close_matches

        self.name = name
        self.suggestions = close_matches(name, known)
        self.message = f"No {what} named {name!r}.{_did_you_mean(self.suggestions)}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class InvalidNameError(StepkitError, ValueError):
    """A name that breaks the naming rules (PascalCase steps, snake_case files)."""

    def __init__(self, value: str, reason: str, *, suggestions: Iterable[str] = ()) -> None:
        self.value = value
        self.reason = reason
        self.suggestions = list(suggestions)
        super().__init__(f"{value!r} {reason}.{_did_you_mean(self.suggestions)}")


class RegistryFileError(StepkitError, ValueError):
    """A registry source that cannot be read: bad syntax, non-literal value, unknown field."""

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        line: int | None = None,
        suggestions: Iterable[str] = (),
    ) -> None:
        self.path = path
        self.line = line
        self.suggestions = list(suggestions)
        super().__init__(f"{_where(path, line)}{message}{_did_you_mean(self.suggestions)}")


class RegistryConflictError(StepkitError, ValueError):
    """A workspace redefines a step without declaring an override."""

    def __init__(
        self,
        name: str,
        *,
        path: Path,
        line: int | None,
        existing_path: Path,
        existing_line: int | None,
    ) -> None:
        self.name = name
        self.path = path
        self.line = line
        self.existing_path = existing_path
        self.existing_line = existing_line
        super().__init__(
            f"{_where(path, line)}step {name!r} is already defined at "
            f"{existing_path}:{existing_line or '?'}; mark it as an override "
            "(override = true in TOML, or STEP_OVERRIDES in Python) or rename it."
        )


# -- state, files ---------------------------------------------------------------------------


class StateStoreError(StepkitError, RuntimeError):
    """A state or catalog database that cannot be opened or migrated."""


class PathEscapeError(StepkitError, ValueError):
    """A path that would land outside the root it must stay in."""

    def __init__(self, path: str | Path, root: Path) -> None:
        self.path = path
        self.root = root
        super().__init__(f"Path {str(path)!r} escapes its root {root}.")


# -- pipeline DAG files and plans -------------------------------------------------------------


class DagError(StepkitError, ValueError):
    """A DAG of step nodes that cannot run: a cycle, a self-edge, a node listed twice."""


class DagFileError(DagError):
    """A DAG (or pipeline config) file that cannot be read; names the file and line."""

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        line: int | None = None,
        suggestions: Iterable[str] = (),
    ) -> None:
        self.path = path
        self.line = line
        self.suggestions = list(suggestions)
        super().__init__(f"{_where(path, line)}{message}.{_did_you_mean(self.suggestions)}")


class PlanError(StepkitError, ValueError):
    """A pipeline that cannot be planned; names the node, the problem, and close names."""

    def __init__(self, node: str, message: str, *, suggestions: Iterable[str] = ()) -> None:
        self.node = node
        self.suggestions = list(suggestions)
        super().__init__(f"{node}: {message}{_did_you_mean(self.suggestions)}")


class PlanInvalidError(StepkitError, ValueError):
    """Every problem that keeps a pipeline from running, each on its own line naming its node."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"the pipeline cannot run ({count} problem{'s' if count != 1 else ''}):\n{lines}"
        )


# -- artifacts ------------------------------------------------------------------------------


class InvalidDigestError(StepkitError, ValueError):
    """A SHA-256 digest that is not 64 lowercase hex characters; no path is built from it."""

    def __init__(self, value: object) -> None:
        self.value = value
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        super().__init__(f"Invalid SHA-256 digest {shown}: expected 64 lowercase hex characters.")


class ArtifactNotFoundError(StepkitError, LookupError):
    """No artifact (or object) with that id or digest; suggests close artifact ids."""

    def __init__(self, key: str, *, what: str = "artifact", known: Iterable[str] = ()) -> None:
        from stepkit.names import close_matches

        self.key = key
        self.suggestions = close_matches(key, list(known))
        super().__init__(f"No {what} {key!r} in the store.{_did_you_mean(self.suggestions)}")


class ArtifactStoreError(StepkitError, RuntimeError):
    """The store cannot do what was asked (file changed while hashed, unsupported backend)."""


class ManifestError(StepkitError, ValueError):
    """A manifest that cannot be read at all (missing file, not a file)."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


# -- pipelines and run state ----------------------------------------------------------------


class PipelineDefinitionError(StepkitError, ValueError):
    """A pipeline that cannot run as declared: duplicate stage, bad mode, bad option."""


class PipelineCycleError(PipelineDefinitionError, DagFileError):
    """The DAG's edges form a cycle; ``cycle`` lists it, first node repeated last. For a
    DAG read from a file, ``path`` and ``line`` (of the cycle's first edge) say where."""

    def __init__(
        self,
        pipeline: str,
        cycle: Iterable[str],
        *,
        path: Path | None = None,
        line: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.cycle = list(cycle)
        self.path = path  # type: ignore[assignment]  # a DagFileError whose file may be unknown
        self.line = line
        self.suggestions = []
        shown = " → ".join(self.cycle)
        if path is None:
            message = f"Pipeline {pipeline!r} has a cycle: {shown}."
        else:
            message = f"{_where(path, line)}the DAG has a cycle: {shown}."
        super(DagFileError, self).__init__(message)


class UnknownStageError(StepkitError, KeyError, ValueError):
    """A stage name (a dependency, a stage to look up) the pipeline does not have."""

    def __init__(self, name: str, known: Iterable[str], *, needed_by: str | None = None) -> None:
        from stepkit.names import close_matches

        self.name = name
        self.needed_by = needed_by
        self.suggestions = close_matches(name, list(known))
        where = f"Stage {needed_by!r} depends on an unknown stage" if needed_by else "No stage"
        self.message = f"{where} {name!r}.{_did_you_mean(self.suggestions)}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class StageOutputError(StepkitError, TypeError):
    """A stage returned outputs that cannot be recorded (not a mapping, not JSON-serializable)."""

    def __init__(self, stage: str, message: str, *, key: str | None = None) -> None:
        self.stage = stage
        self.key = key
        subject = f"output {key!r}: " if key is not None else ""
        super().__init__(f"Stage {stage!r}: {subject}{message}")


class StageTimeoutError(StepkitError, TimeoutError):
    """A stage attempt ran past its timeout (its process tree killed, or its thread abandoned)."""

    def __init__(self, stage: str, timeout: float, *, mode: str) -> None:
        self.stage = stage
        self.timeout = timeout
        self.mode = mode
        action = "thread abandoned" if mode == "direct" else "stopped"
        if mode == "subprocess":
            action = "process tree killed"
        super().__init__(f"Stage {stage!r} timed out after {timeout:g} s ({action}).")


class StageValidationError(StepkitError, ValueError):
    """A stage object's ``validate(context)`` refused to run."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        super().__init__(f"Stage {stage!r} failed validation: {message}")


class RemoteStageError(StepkitError, RuntimeError):
    """An exception from a stage in another process that could not be rebuilt here."""

    def __init__(self, stage: str, type_name: str, message: str) -> None:
        self.stage = stage
        self.type_name = type_name
        super().__init__(f"Stage {stage!r} raised {type_name}: {message}")


class UnknownRunError(StepkitError, LookupError):
    """A run id the state store does not have; suggests close ids."""

    def __init__(self, run_id: str, known: Iterable[str] = ()) -> None:
        from stepkit.names import close_matches

        self.run_id = run_id
        self.suggestions = close_matches(run_id, list(known))
        super().__init__(f"No run {run_id!r} in the state store.{_did_you_mean(self.suggestions)}")


class RunLeaseError(StepkitError, RuntimeError):
    """A run another live runner still holds (its lease has not expired)."""

    def __init__(self, run_id: str, holder: str, expires_in: float) -> None:
        self.run_id = run_id
        self.holder = holder
        self.expires_in = expires_in
        super().__init__(
            f"Run {run_id!r} is held by a live runner ({holder}); its lease expires in "
            f"{expires_in:.0f} s."
        )


class StepOutputMissingError(StepkitError, FileNotFoundError):
    """A step finished without writing an output its contract promised."""

    def __init__(self, node: str, output: str, folder: str) -> None:
        self.node = node
        self.output = output
        self.folder = folder
        super().__init__(
            f"{node}: output {output!r} is missing or empty ({folder}); the contract promises it."
        )


# -- PostgreSQL backends (state, artifact catalog, step cache) ---------------------------------


class PostgresUrlError(StepkitError, ValueError):
    """A ``postgresql://`` setting that cannot be used: unparsable, or with a password in it
    (credentials come from PGPASSWORD / ~/.pgpass / a service file, never stepkit.toml)."""

    def __init__(self, url: str, key: str, problem: str) -> None:
        self.url = url
        self.key = key
        # Never echo a password back: print the URL only up to its host part.
        shown = url.split("?", 1)[0]
        if "@" in shown:
            shown = f"{shown.split('://', 1)[0]}://…@{shown.rsplit('@', 1)[1]}"
        super().__init__(f"{key} {shown} {problem}.")


class UnknownStoreUrlError(StepkitError, ValueError):
    """A state / catalog / cache location whose scheme no backend handles."""

    def __init__(self, url: str, key: str, schemes: Iterable[str]) -> None:
        self.url = url
        self.key = key
        self.schemes = tuple(schemes)
        super().__init__(f"{key} {url!r}: unknown scheme; use one of {', '.join(self.schemes)}.")


# -- scale-out: executors on real engines (Dask) -----------------------------------------------


class ExecutorSpecError(StepkitError, ValueError):
    """An ``--executor`` value that names no executor stepkit knows."""

    KNOWN = ("local", "process", "dask-local", "dask://HOST:PORT")

    def __init__(self, spec: str) -> None:
        from stepkit.names import close_matches

        self.spec = spec
        self.suggestions = close_matches(spec, [k for k in self.KNOWN if "HOST" not in k])
        super().__init__(
            f"Unknown executor {spec!r}: use {', '.join(self.KNOWN)}."
            f"{_did_you_mean(self.suggestions)}"
        )


class SchedulerUnreachableError(StepkitError, ConnectionError):
    """No Dask scheduler answered at the address given."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        super().__init__(f"No Dask scheduler at {address}: {reason}")


# -- per-step environments ---------------------------------------------------------------------


class UvNotInstalledError(StepkitError, ModuleNotFoundError):
    """Per-step environments need uv, which is an optional extra."""

    def __init__(self) -> None:
        super().__init__("Per-step environments need uv: pip install 'stepkit[envs]'.", name="uv")


class EnvironmentBuildError(StepkitError, RuntimeError):
    """No local interpreter gives an environment that installs and imports the requirements.

    ``requirement`` is the declared requirement the resolver (or the import check) named,
    ``tried`` the interpreter versions tried, ``reason`` what the last failure said.
    """

    def __init__(self, requirement: str, *, tried: Iterable[str], reason: str) -> None:
        self.requirement = requirement
        self.tried = tuple(tried)
        self.reason = reason
        tried_text = ", ".join(self.tried) or "none found"
        super().__init__(
            f"Cannot build an environment for {requirement}: {reason} "
            f"(interpreters tried: {tried_text})."
        )


class EnvModeError(StepkitError, ValueError):
    """An environment mode that is not one of ``shared`` and ``per-step``."""

    def __init__(self, mode: str, known: Iterable[str]) -> None:
        from stepkit.names import close_matches

        known = tuple(known)
        self.mode = mode
        self.suggestions = close_matches(mode, known)
        super().__init__(
            f"No environment mode {mode!r}: use one of {', '.join(known)}."
            + _did_you_mean(self.suggestions)
        )


class EnvironmentLockError(StepkitError, ValueError):
    """An environment's lock file that cannot be used to rebuild it."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


# -- damaged, full or read-only stores --------------------------------------------------------


class StoreDamagedError(StateStoreError):
    """A store file that is empty, foreign, without a stepkit schema, or corrupt: never taken
    for a new store (that would forget every record in it)."""

    def __init__(self, path: Path | str, store: str, problem: str, *, reinit: str) -> None:
        self.path = Path(path)
        self.store = store
        self.problem = problem
        super().__init__(
            f"The {store} {path} {problem}. Restore it from a backup, or set it aside and "
            f"start an empty one with `stepkit doctor --reinit {reinit}`."
        )


class StoreTooNewError(StateStoreError):
    """A store whose schema a newer stepkit made: not damaged, and never re-initialised —
    the way out is a newer stepkit."""

    def __init__(self, path: Path | str, store: str, *, version: int, known: int) -> None:
        self.path = Path(path)
        self.store = store
        self.version = version
        super().__init__(
            f"The {store} {path} is at schema version {version}, newer than this stepkit "
            f"knows ({known}); upgrade stepkit."
        )


class StoreFullError(OSError, StateStoreError):
    """The disk under a store is full (ENOSPC); nothing of the write was kept. (OSError
    first: its constructor is the one that can rebuild the error after pickling.)"""

    __reduce__ = StepkitError.__reduce__  # not OSError's, which calls __init__

    def __init__(self, path: Path | str, store: str) -> None:
        import errno

        self.path = Path(path)
        self.store = store
        StateStoreError.__init__(
            self,
            f"The disk holding the {store} {path} is full; nothing of this write was kept. "
            "Free some space and try again.",
        )
        self.errno = errno.ENOSPC  # no filename: OSError would then reword the message


class StorePermissionError(PermissionError, StateStoreError):
    """A store file (or its folder) that this user may not write, or read (PermissionError
    first, as for :class:`StoreFullError`)."""

    __reduce__ = StepkitError.__reduce__  # not OSError's, which calls __init__

    def __init__(self, path: Path | str, store: str, *, action: str = "write") -> None:
        import errno

        self.path = Path(path)
        self.store = store
        if _on_read_only_file_system(self.path):
            reason, hint = "its file system is read-only", "remount it read-write"
        else:
            reason, hint = "permission denied", "check its owner and mode (and its folder's)"
        StateStoreError.__init__(
            self,
            f"Cannot {action} the {store} {path}: {reason}. To change it, {hint}; a "
            "read-only command works as it is.",
        )
        self.errno = errno.EROFS if reason != "permission denied" else errno.EACCES


def _on_read_only_file_system(path: Path) -> bool:
    """Whether the nearest existing folder at or above ``path`` is on a read-only mount."""
    import os

    if not hasattr(os, "statvfs"):  # not POSIX: no such flag to read
        return False
    for folder in (path, *path.parents):
        try:
            return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:  # not there (yet): ask its parent
            continue
    return False


class GcRefusedError(StepkitError, RuntimeError):
    """``artifacts gc --apply`` refusing to delete because the catalog looks wrong."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"gc refused: {reason}. Check with `stepkit doctor` and `stepkit artifacts "
            "verify`; pass --force to collect anyway."
        )


class RecordsUnreadableError(StateStoreError):
    """Rows of a store that are there but cannot be decoded: never half an answer."""

    def __init__(self, where: str, what: str, problem: str) -> None:
        self.where = where
        self.what = what
        self.problem = problem
        super().__init__(
            f"{what} in {where} cannot be read ({problem}); the store is damaged: run "
            "`stepkit doctor`, and restore the file from a backup."
        )


class InvalidRegistrationError(StepkitError, ValueError):
    """A catalog registration with an empty (or non-text) id: never recorded."""

    def __init__(self, field: str, value: object) -> None:
        self.field = field
        self.value = value
        super().__init__(f"Invalid {field} {value!r}: it must be a non-empty string.")


class StoreLockTimeoutError(StepkitError, TimeoutError):
    """The store lock stayed taken (by finalizes) longer than a bounded wait."""

    def __init__(self, lock: Path, timeout: float) -> None:
        self.lock = lock
        self.timeout = timeout
        super().__init__(
            f"The store lock {lock} stayed taken for {timeout:g} s (runs are finalizing "
            "outputs); nothing was deleted. Run gc again when the store is quieter, or give "
            "it longer with --lock-timeout."
        )


class ResumeMismatchError(StepkitError, ValueError):
    """``run --resume`` given a DAG, config or options other than the run was made with."""

    def __init__(self, run_id: str, what: str, recorded: str, given: str) -> None:
        self.run_id = run_id
        self.what = what
        self.recorded = recorded
        self.given = given
        super().__init__(
            f"Run {run_id!r} was made with {f'{what} ' if what else ''}{recorded}, not "
            f"{given}; resume it with `stepkit runs resume {run_id}` (its own DAG, config and "
            "options), or start a new run."
        )


class CorruptIndexError(StepkitError, ValueError):
    """The catalog index file is damaged, of another program or of a newer stepkit: the
    catalog rebuilds it (with a warning naming it), as it is only a cache of the tree."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"catalog index {path} cannot be used ({reason})")


class InterfaceFileError(StepkitError, ValueError):
    """A ``.step.yaml`` interface file that cannot be read: bad YAML, a missing or unknown key."""

    def __init__(self, path: Path, message: str, *, line: int | None = None) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{_where(path, line)}{message}")
