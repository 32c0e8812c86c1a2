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
from typing import TYPE_CHECKING, Any, Final, Literal

import tomli

from stepkit.errors import ProjectFileError, ProjectNotFoundError, UnknownWorkspaceError

if TYPE_CHECKING:
    from pydantic import ValidationError

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


def _models() -> Any:
    """The pydantic models of the file, built on first use to keep ``import stepkit`` light."""
    global _MODELS
    if _MODELS is not None:
        return _MODELS
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    class ProjectSection(_Strict):
        name: str = Field(min_length=1)
        state_dir: str = ".stepkit"

    class WorkspaceSection(_Strict):
        id: str = Field(min_length=1)
        path: str
        registry: str | None = None

        @field_validator("id")
        @classmethod
        def _id_is_simple(cls, value: str) -> str:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
                raise ValueError("must be letters, digits, '_', '-' or '.'")
            return value

    class StateSection(_Strict):
        url: str | None = None

    class ArtifactsSection(_Strict):
        root: str | None = None
        catalog_url: str | None = None

    class RunSection(_Strict):
        executor: str = "local"
        max_workers: int | None = Field(default=None, ge=1)
        environments_dir: str | None = None
        environments: Literal["shared", "per-step"] = "shared"  # ENV_MODES
        sandbox: bool = False

    class TestSection(_Strict):
        timeout: float = Field(default=300.0, gt=0)
        env: dict[str, str] = Field(default_factory=dict)
        args: dict[str, str] = Field(default_factory=dict)
        data: dict[str, str | dict[str, str]] = Field(default_factory=dict)

    class ProjectFileModel(_Strict):
        project: ProjectSection
        workspaces: list[WorkspaceSection] = Field(min_length=1)
        state: StateSection = StateSection()
        artifacts: ArtifactsSection = ArtifactsSection()
        run: RunSection = RunSection()
        test: TestSection = TestSection()

    _MODELS = ProjectFileModel
    return _MODELS


_MODELS: Any = None


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


def _validation_error(path: Path, text: str, exc: ValidationError) -> ProjectFileError:
    from stepkit.errors import validation_message
    from stepkit.names import close_matches

    # A misspelt key shows up twice (unknown, and the real one missing): report the typo.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    line = _key_line(text, loc)
    if error["type"] == "extra_forbidden":
        model = _models()
        known: list[str] = list(model.model_fields)
        if len(loc) > 1:
            section = model.model_fields.get(loc[0])
            annotation = section.annotation if section else None
            inner = getattr(annotation, "__args__", (annotation,))[0]
            known = list(getattr(inner, "model_fields", {}))
        return ProjectFileError(
            path, "unknown key.", key=key, line=line, suggestions=close_matches(loc[-1], known)
        )
    if error["type"] == "missing":
        return ProjectFileError(path, "required key is missing.", key=key, line=line)
    return ProjectFileError(
        path, f"{validation_message(error)} (got {error.get('input')!r}).", key=key, line=line
    )


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
    from pydantic import ValidationError

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
        model = _models().model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, text, exc) from exc

    root = path.parent
    seen: set[str] = set()
    workspaces: list[Workspace] = []
    for index, section in enumerate(model.workspaces):
        key = f"workspaces[{index}]"
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
