"""``stepkit.toml`` → :class:`Project`.

The project file names the workspaces in precedence order (the first wins, the last is
the core one) and the settings; ``STEPKIT_*`` environment variables override settings.
The files of a workspace come from the one walker, :mod:`stepkit.walk`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
import tomli

from stepkit.errors import ProjectFileError, ProjectNotFoundError, UnknownWorkspaceError

PROJECT_FILE: Final = "stepkit.toml"
#: Registry files looked for inside a workspace's steps folder, in this order.
DEFAULT_REGISTRY_FILES: Final = (
    "registry.toml",
    "step_names.py",
    "registry.py",
    "step_names.yaml",
    "registry.yaml",
)
#: Component folders inside a steps folder, and the component each holds.
COMPONENT_DIRS: Final[Mapping[str, str]] = {
    "scripts": "script",
    "contracts": "contract",
    "specs": "spec",
    "configs": "config",
    "builders": "builder",
    "hyperparams": "hyperparams",
    "interfaces": "interface",
}
#: The file name suffix of an interface file (``interfaces/<stem>.step.yaml``).
INTERFACE_SUFFIX: Final = ".step.yaml"
#: ``[run] environments``: ``shared`` runs every step in stepkit's own environment,
#: ``per-step`` a step whose contract declares requirements in its own (stepkit.envs).
ENV_MODES: Final = ("shared", "per-step")


# -- the project -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workspace:
    """One workspace: its id, its steps folder (absolute) and its registry file (or the
    interfaces folder it is derived from), if any."""

    id: str
    steps_dir: Path
    registry_file: Path | None
    is_core: bool


@dataclass(frozen=True, slots=True)
class StateSettings:
    url: str | None = None  # None: SQLite in the state directory


@dataclass(frozen=True, slots=True)
class ArtifactSettings:
    root: Path | str | None = None  # None: <state_dir>/artifacts; str: a URL (s3://bucket/prefix)
    catalog_url: str | None = None  # None: SQLite in the state directory


@dataclass(frozen=True, slots=True)
class RunDefaults:
    """``[run]`` of ``stepkit.toml``: what a run uses unless told otherwise (the run's own
    settings are :class:`stepkit.pipeline.settings.RunSettings`)."""

    executor: str = "local"
    max_workers: int | None = None
    environments_dir: Path | None = None  # None: the user's cache folder (stepkit.envs)
    environments: str = "shared"  # one of ENV_MODES
    sandbox: bool = False  # script steps run under bubblewrap (stepkit.sandbox), as tests do


@dataclass(frozen=True, slots=True)
class TestSettings:
    timeout: float = 300.0
    env: Mapping[str, str] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)  # job arguments, by name
    #: sample inputs by step or node name: a folder of one sub-folder per input, or
    #: input -> file or folder; paths absolute (given relative to the project root)
    data: Mapping[str, Path | Mapping[str, Path]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Project:
    """A loaded ``stepkit.toml``: paths are absolute, workspaces in precedence order."""

    name: str
    root: Path
    file: Path
    state_dir: Path
    workspaces: tuple[Workspace, ...]
    state: StateSettings = StateSettings()
    artifacts: ArtifactSettings = ArtifactSettings()
    run: RunDefaults = RunDefaults()
    test: TestSettings = TestSettings()

    @property
    def core(self) -> Workspace:
        """The last workspace: the shared one whose registry holds the core definitions."""
        return self.workspaces[-1]

    @property
    def workspace_ids(self) -> tuple[str, ...]:
        return tuple(ws.id for ws in self.workspaces)

    def workspace(self, workspace_id: str) -> Workspace:
        for ws in self.workspaces:
            if ws.id == workspace_id:
                return ws
        raise UnknownWorkspaceError(workspace_id, self.workspace_ids)

    @property
    def artifacts_root(self) -> Path | str:
        return self.artifacts.root or self.state_dir / "artifacts"

    @classmethod
    def load(cls, path: Path | str | None = None, *, cwd: Path | None = None) -> Project:
        """Load the project at ``path`` (a file or its folder), else ``STEPKIT_PROJECT``,
        else the first ``stepkit.toml`` found walking up from ``cwd``."""
        return load_project(find_project_file(path, cwd=cwd))


def find_project_file(path: Path | str | None = None, *, cwd: Path | None = None) -> Path:
    """Where the project file is: explicit path, ``STEPKIT_PROJECT``, or walking up."""
    given = path if path is not None else os.environ.get("STEPKIT_PROJECT") or None
    if given is not None:
        candidate = Path(given).expanduser().absolute()
        if candidate.is_dir():
            candidate = candidate / PROJECT_FILE
        if not candidate.is_file():
            raise ProjectNotFoundError(candidate)
        return candidate
    start = (cwd or Path.cwd()).absolute()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    raise ProjectNotFoundError(start)


# -- validation of the file (pydantic, imported only when a project is loaded) ---------------

#: Environment variables that override settings, and the key each one overrides.
ENV_OVERRIDES: Final[Mapping[str, tuple[str, str]]] = {
    "STEPKIT_STATE_DIR": ("project", "state_dir"),
    "STEPKIT_STATE_URL": ("state", "url"),
    "STEPKIT_ARTIFACTS_ROOT": ("artifacts", "root"),
    "STEPKIT_ARTIFACTS_CATALOG_URL": ("artifacts", "catalog_url"),
    "STEPKIT_EXECUTOR": ("run", "executor"),
    "STEPKIT_MAX_WORKERS": ("run", "max_workers"),
    "STEPKIT_ENVIRONMENTS_DIR": ("run", "environments_dir"),
    "STEPKIT_ENV_MODE": ("run", "environments"),
    "STEPKIT_TEST_TIMEOUT": ("test", "timeout"),
}


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A table of ``stepkit.toml``: an unknown key is an error."""


class _ProjectSection(_Section):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    state_dir: str = ".stepkit"


class _WorkspaceSection(_Section):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    path: str
    registry: str | None = None


class _StateSection(_Section):
    url: str | None = None


class _ArtifactsSection(_Section):
    root: str | None = None
    catalog_url: str | None = None


class _RunSection(_Section):
    executor: str = "local"
    max_workers: Annotated[int, msgspec.Meta(ge=1)] | None = None
    environments_dir: str | None = None
    environments: Literal["shared", "per-step"] = "shared"  # ENV_MODES
    sandbox: bool = False


class _TestSection(_Section):
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    env: dict[str, str] = {}
    args: dict[str, str] = {}
    data: dict[str, str | dict[str, str]] = {}


class _ProjectFile(_Section):
    """The whole file, as msgspec reads it (a C library: no schema is built at start)."""

    project: _ProjectSection
    workspaces: Annotated[list[_WorkspaceSection], msgspec.Meta(min_length=1)]
    state: _StateSection = msgspec.field(default_factory=_StateSection)
    artifacts: _ArtifactsSection = msgspec.field(default_factory=_ArtifactsSection)
    run: _RunSection = msgspec.field(default_factory=_RunSection)
    test: _TestSection = msgspec.field(default_factory=_TestSection)


#: The table each top-level key holds (what an unknown key is compared with).
_SECTIONS: Final[Mapping[str, type[_Section]]] = {
    "project": _ProjectSection,
    "workspaces": _WorkspaceSection,
    "state": _StateSection,
    "artifacts": _ArtifactsSection,
    "run": _RunSection,
    "test": _TestSection,
}
#: A value that must be one of a few words, by key.
_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {"run.environments": ENV_MODES}
_WORKSPACE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: msgspec's account of a value that does not fit: what, and where (``$.run.max_workers``).
_PROBLEM: Final = re.compile(r"(?P<what>.*?)(?: - at `\$(?P<at>[^`]*)`)?", re.DOTALL)


def _key_line(text: str, loc: list[str]) -> int | None:
    """Best-effort line of a key in TOML text (tomli keeps no positions).

    ``loc`` is the key path, e.g. ``["workspaces", "1", "path"]``: the key is looked for
    after the header of its table (the second ``[[workspaces]]`` here).
    """
    offset = 0
    if len(loc) > 1:
        header = re.compile(rf"^[ \t]*\[\[?\s*{re.escape(loc[0])}\s*\]\]?", re.MULTILINE)
        headers = list(header.finditer(text))
        index = int(loc[1]) if len(loc) > 2 and loc[1].isdigit() else 0
        if index < len(headers):
            offset = headers[index].end()
    last = loc[-1]
    if last.isdigit():
        return None
    pattern = re.compile(rf"^[ \t]*(\[\[?\s*)?{re.escape(last)}\s*(=|\]|\.)", re.MULTILINE)
    match = pattern.search(text, offset) or pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _validation_error(
    path: Path, text: str, data: Any, exc: msgspec.ValidationError
) -> ProjectFileError:
    """msgspec's one error as a :class:`ProjectFileError` naming the key, its line and, for
    an unknown key, the known ones closest to it."""
    from stepkit.names import close_matches

    found = _PROBLEM.fullmatch(str(exc))
    assert found is not None  # the pattern takes any text
    at, inside, _ = (found["at"] or "").partition("[...]")  # msgspec names no table key
    what = found["what"]
    loc = [a or b for a, b in re.findall(r"\.([^.\[]+)|\[(\d+)\]", at)]
    named = re.fullmatch(r"Object (contains unknown|missing required) field `(.+)`", what)
    if named is not None:
        loc.append(named[2])
    key = ".".join(loc)
    line = _key_line(text, loc)
    if named is not None and named[1] == "contains unknown":
        section = _SECTIONS.get(loc[0]) if len(loc) > 1 else _ProjectFile
        known = section.__struct_fields__ if section is not None else ()
        return ProjectFileError(
            path, "unknown key.", key=key, line=line, suggestions=close_matches(loc[-1], known)
        )
    if named is not None:
        return ProjectFileError(path, "required key is missing.", key=key, line=line)
    value: Any = data
    for part in loc:
        value = value[int(part)] if isinstance(value, list) else value.get(part)
    choices = _CHOICES.get(key)
    if choices is not None:
        message = f"must be {' or '.join(map(repr, choices))}"
        near = close_matches(str(value), choices)
        return ProjectFileError(
            path, f"{message} (got {value!r}).", key=key, line=line, suggestions=near
        )
    if inside:  # a value of a table of values (``[test] env``)
        return ProjectFileError(path, f"each value {_plain(what)} (got {value!r}).", key=key)
    return ProjectFileError(path, f"{_plain(what)} (got {value!r}).", key=key, line=line)


_KINDS: Final = {
    "int": "an integer",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "a table",
    "null": "nothing",
}
_BOUNDS: Final = {
    ">=": "greater than or equal to",
    ">": "greater than",
    "<=": "less than or equal to",
    "<": "less than",
}


def _plain(what: str) -> str:
    """msgspec's words for a value that does not fit (``Expected `int` >= 1``), as a
    sentence (``must be an integer greater than or equal to 1``)."""
    if re.fullmatch(r"Expected `\w+` of length >= 1", what):
        return "must not be empty"
    bounded = re.fullmatch(r"Expected `(\w+)` (>=|>|<=|<) (\S+)", what)
    if bounded is not None:
        kind, bound, limit = bounded.groups()
        return f"must be {_KINDS.get(kind, kind)} {_BOUNDS[bound]} {limit}"
    typed = re.fullmatch(r"Expected `([^`]+)`, got `(\w+)`", what)
    if typed is not None:
        kinds = [t.strip() for t in typed[1].split("|") if t.strip() != "null"]  # TOML has none
        wanted = " or ".join(_KINDS.get(kind, kind) for kind in kinds)
        return f"must be {wanted}, not {_KINDS.get(typed[2], typed[2])}"
    return what.replace("`", "")


#: Keys that would put a secret in stepkit.toml, which is committed and shared.
_CREDENTIAL_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key",
        "secret_key",
        "access_key_id",
        "secret_access_key",
        "key",
        "secret",
        "token",
        "password",
        "credentials",
    }
)


def _is_url(root: str) -> bool:
    """A store root written as a URL (``s3://…``), not a local folder (``file://`` is local)."""
    scheme, sep, _ = root.partition("://")
    return bool(sep) and scheme not in ("", "file")


def _refuse_credentials(path: Path, text: str, data: dict[str, Any]) -> None:
    """Credentials never go in stepkit.toml: the standard AWS chain supplies them."""
    section = data.get("artifacts")
    if not isinstance(section, dict):
        return
    for key in section:
        if key.lower() in _CREDENTIAL_KEYS:
            raise ProjectFileError(
                path,
                "credentials never go in stepkit.toml; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, ~/.aws/credentials) in the environment.",
                key=f"artifacts.{key}",
                line=_key_line(text, ["artifacts", key]),
            )
    root = section.get("root")
    if isinstance(root, str) and _is_url(root) and "@" in root.partition("://")[2].split("/")[0]:
        raise ProjectFileError(
            path,
            "credentials never go in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE, ~/.aws/credentials) in the environment.",
            key="artifacts.root",
            line=_key_line(text, ["artifacts", "root"]),
        )


def _apply_env(data: dict[str, Any]) -> None:
    for var, (section, key) in ENV_OVERRIDES.items():
        value = os.environ.get(var)
        if value:
            data.setdefault(section, {})
            if isinstance(data[section], dict):
                data[section][key] = value


def load_project(path: Path) -> Project:
    """Read and validate one ``stepkit.toml``; every problem is a :class:`ProjectFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectFileError(path, f"cannot be read: {exc}") from exc
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ProjectFileError(path, f"is not valid TOML: {exc}", line=line) from exc
    _apply_env(data)
    _refuse_credentials(path, text, data)
    try:
        # not strict: a setting from a STEPKIT_* variable is text (``"4"`` for max_workers)
        model = msgspec.convert(data, _ProjectFile, strict=False)
    except msgspec.ValidationError as exc:
        raise _validation_error(path, text, data, exc) from exc

    root = path.parent
    seen: set[str] = set()
    workspaces: list[Workspace] = []
    for index, section in enumerate(model.workspaces):
        key = f"workspaces[{index}]"
        if not _WORKSPACE_ID.fullmatch(section.id):
            raise ProjectFileError(
                path,
                f"must be letters, digits, '_', '-' or '.' (got {section.id!r}).",
                key=f"workspaces.{index}.id",
                line=_key_line(text, ["workspaces", str(index), "id"]),
            )
        if section.id in seen:
            raise ProjectFileError(
                path, f"workspace id {section.id!r} is listed twice.", key=f"{key}.id"
            )
        seen.add(section.id)
        steps_dir = (root / section.path).resolve()
        if not steps_dir.is_dir():
            raise ProjectFileError(
                path,
                f"workspace {section.id!r}: steps folder {section.path!r} does not exist "
                f"(looked for {steps_dir}).",
                key=f"{key}.path",
                line=_key_line(text, ["workspaces", str(index), "path"]),
            )
        registry_file = _registry_file(path, text, key, steps_dir, root, section.registry)
        workspaces.append(
            Workspace(
                id=section.id,
                steps_dir=steps_dir,
                registry_file=registry_file,
                is_core=index == len(model.workspaces) - 1,
            )
        )

    state_dir = (root / model.project.state_dir).resolve()
    artifacts_root: Path | str | None = None
    if model.artifacts.root and _is_url(model.artifacts.root):
        artifacts_root = model.artifacts.root  # a remote store: kept as written
    elif model.artifacts.root:
        artifacts_root = (root / model.artifacts.root).resolve()
    return Project(
        name=model.project.name,
        root=root,
        file=path,
        state_dir=state_dir,
        workspaces=tuple(workspaces),
        state=StateSettings(url=model.state.url),
        artifacts=ArtifactSettings(root=artifacts_root, catalog_url=model.artifacts.catalog_url),
        run=RunDefaults(
            executor=model.run.executor,
            max_workers=model.run.max_workers,
            environments_dir=(
                (root / Path(model.run.environments_dir).expanduser()).resolve()
                if model.run.environments_dir
                else None
            ),
            environments=model.run.environments,
            sandbox=model.run.sandbox,
        ),
        test=TestSettings(
            timeout=model.test.timeout,
            env=dict(model.test.env),
            args=dict(model.test.args),
            data={
                name: root / given
                if isinstance(given, str)
                else {logical: root / path for logical, path in given.items()}
                for name, given in model.test.data.items()
            },
        ),
    )


def _registry_file(
    path: Path, text: str, key: str, steps_dir: Path, root: Path, given: str | None
) -> Path | None:
    if given is not None:
        registry = (root / given).resolve()
        if not (registry.is_file() or registry.is_dir()):  # a folder: interfaces to derive from
            raise ProjectFileError(
                path,
                f"registry file {given!r} does not exist (looked for {registry}).",
                key=f"{key}.registry",
                line=_key_line(text, ["workspaces", key.split("[")[1].rstrip("]"), "registry"]),
            )
        return registry
    for name in DEFAULT_REGISTRY_FILES:
        for candidate in (steps_dir / name, steps_dir / "registry" / name):
            if candidate.is_file():
                return candidate
    interfaces = steps_dir / "interfaces"  # the interface layout: the registry is derived
    return interfaces if interfaces.is_dir() else None
