"""Every error stepkit raises on purpose.

One root, :class:`StepkitError`; each subclass also subclasses the builtin a caller would
expect (``LookupError`` for an unknown name, ``ValueError`` for bad input), keeps the
offending value as an attribute, and renders as one line the CLI can print as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class StepkitError(Exception):
    """Root of every error stepkit raises on purpose; its message is one line."""


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


# -- runtime tester -------------------------------------------------------------------------


class DagFileError(StepkitError, ValueError):
    """A pipeline DAG file that cannot be used: unreadable, malformed, cyclic, unknown step."""

    def __init__(
        self, path: Path, message: str, *, line: int | None = None, suggestions: Iterable[str] = ()
    ) -> None:
        self.path = path
        self.line = line
        self.suggestions = list(suggestions)
        super().__init__(f"{_where(path, line)}{message}.{_did_you_mean(self.suggestions)}")
