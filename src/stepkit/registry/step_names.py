"""Compatibility module for code written against the classic flat step registry.

``STEP_NAMES``, ``CONFIG_STEP_REGISTRY``, ``BUILDER_STEP_NAMES`` and ``SPEC_STEP_TYPES``
are live read-only mappings: every access reads the registry as the *active* workspace
sees it, so a reference taken at import time follows later ``workspace_context`` changes.
The registry is the project's (found like the CLI finds it) unless :func:`set_registry`
installs another. Unknown names raise :class:`~stepkit.errors.UnknownStepError`, which is
both a ``KeyError`` and a ``ValueError`` as the classic functions raised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from stepkit.errors import InvalidNameError, UnknownStepError
from stepkit.names import canonical_name_from_file_name
from stepkit.registry.context import (
    active_workspace,
    clear_workspace_context,
    get_workspace_context,
    set_workspace_context,
    workspace_context,
)
from stepkit.registry.layering import Registry

__all__ = [
    "BUILDER_STEP_NAMES",
    "CONFIG_STEP_REGISTRY",
    "SPEC_STEP_TYPES",
    "STEP_NAMES",
    "clear_workspace_context",
    "get_all_sagemaker_step_types",
    "get_all_step_names",
    "get_builder_step_name",
    "get_builder_step_names",
    "get_canonical_name_from_file_name",
    "get_config_class_name",
    "get_config_step_registry",
    "get_registry",
    "get_sagemaker_step_type",
    "get_sagemaker_step_type_mapping",
    "get_spec_step_type",
    "get_spec_step_type_with_job_type",
    "get_spec_step_types",
    "get_step_description",
    "get_step_name_from_spec_type",
    "get_step_names",
    "get_steps_by_sagemaker_type",
    "get_workspace_context",
    "list_all_step_info",
    "list_available_workspaces",
    "set_registry",
    "set_workspace_context",
    "validate_file_name",
    "validate_spec_type",
    "validate_step_name",
    "workspace_context",
]

_registry: Registry | None = None
_lock = threading.Lock()
# (registry id, workspace, map kind) -> derived dict; dropped when the registry changes
_derived: dict[tuple[int, str | None, str], dict[str, Any]] = {}


def set_registry(registry: Registry | None) -> None:
    """Install the registry these functions read (``None``: load the project's again)."""
    global _registry
    with _lock:
        _registry = registry
        _derived.clear()


def get_registry() -> Registry:
    """The installed registry, loading the current project's on first use."""
    global _registry
    registry = _registry
    if registry is None:
        with _lock:
            if _registry is None:
                from stepkit.project import Project

                _registry = Registry.load(Project.load())
            registry = _registry
    return registry


def _map(kind: str, workspace_id: str | None) -> dict[str, Any]:
    registry = _registry or get_registry()
    ws = active_workspace(workspace_id)
    key = (id(registry), ws, kind)
    found = _derived.get(key)
    if found is None:
        view = registry.view(ws)
        if kind == "step_names":
            found = dict(registry.classic(ws))
        elif kind == "config":
            found = {d.config_class: name for name, d in view.items()}
        elif kind == "builder":
            found = {name: d.builder_step_name for name, d in view.items()}
        elif kind == "spec":
            found = {name: d.spec_type for name, d in view.items()}
        else:  # pragma: no cover - internal kinds only
            raise ValueError(kind)
        _derived[key] = found
    return found


class _LiveMapping(Mapping[str, Any]):
    """A read-only mapping that re-resolves the active workspace on every access."""

    __slots__ = ("_kind", "_what")

    def __init__(self, kind: str, what: str) -> None:
        self._kind = kind
        self._what = what

    def __getitem__(self, key: str) -> Any:
        current = _map(self._kind, None)
        try:
            return current[key]
        except KeyError:
            raise UnknownStepError(key, current, what=self._what) from None

    def __iter__(self) -> Iterator[str]:
        return iter(_map(self._kind, None))

    def __len__(self) -> int:
        return len(_map(self._kind, None))

    def __contains__(self, key: object) -> bool:
        return key in _map(self._kind, None)

    def __repr__(self) -> str:
        return f"<live {self._kind} mapping: {len(self)} entries>"


STEP_NAMES: Mapping[str, Mapping[str, Any]] = _LiveMapping("step_names", "step")
CONFIG_STEP_REGISTRY: Mapping[str, str] = _LiveMapping("config", "config class")
BUILDER_STEP_NAMES: Mapping[str, str] = _LiveMapping("builder", "step")
SPEC_STEP_TYPES: Mapping[str, str] = _LiveMapping("spec", "step")


# -- the classic functions -----------------------------------------------------------------


def get_step_names(workspace_id: str | None = None) -> dict[str, Mapping[str, Any]]:
    """A snapshot of ``STEP_NAMES`` for a workspace (default: the active one)."""
    return dict(_map("step_names", workspace_id))


def get_config_step_registry(workspace_id: str | None = None) -> dict[str, str]:
    """config class name → step name."""
    return dict(_map("config", workspace_id))


def get_builder_step_names(workspace_id: str | None = None) -> dict[str, str]:
    """step name → builder class name."""
    return dict(_map("builder", workspace_id))


def get_spec_step_types(workspace_id: str | None = None) -> dict[str, str]:
    """step name → spec type."""
    return dict(_map("spec", workspace_id))


def _entry(step_name: str, workspace_id: str | None) -> Mapping[str, Any]:
    names = _map("step_names", workspace_id)
    try:
        return names[step_name]  # type: ignore[no-any-return]
    except KeyError:
        raise UnknownStepError(step_name, names) from None


def get_config_class_name(step_name: str, workspace_id: str | None = None) -> str:
    return str(_entry(step_name, workspace_id)["config_class"])


def get_builder_step_name(step_name: str, workspace_id: str | None = None) -> str:
    return str(_entry(step_name, workspace_id)["builder_step_name"])


def get_spec_step_type(step_name: str, workspace_id: str | None = None) -> str:
    return str(_entry(step_name, workspace_id)["spec_type"])


def get_spec_step_type_with_job_type(
    step_name: str, job_type: str | None = None, workspace_id: str | None = None
) -> str:
    """``spec_type`` with the job type appended as the classic registry did: ``Foo_Training``."""
    base = get_spec_step_type(step_name, workspace_id)
    return f"{base}_{job_type.capitalize()}" if job_type else base


def get_step_name_from_spec_type(spec_type: str, workspace_id: str | None = None) -> str:
    """The step whose spec type is ``spec_type`` (a job-type suffix is ignored)."""
    base = spec_type.split("_", 1)[0]
    reverse = {v: k for k, v in _map("spec", workspace_id).items()}
    try:
        return reverse[base]
    except KeyError:
        raise UnknownStepError(spec_type, reverse, what="spec type") from None


def get_step_description(step_name: str, workspace_id: str | None = None) -> str:
    return str(_entry(step_name, workspace_id)["description"])


def get_sagemaker_step_type(step_name: str, workspace_id: str | None = None) -> str:
    return str(_entry(step_name, workspace_id)["sagemaker_step_type"])


def get_all_step_names(workspace_id: str | None = None) -> list[str]:
    return list(_map("step_names", workspace_id))


def list_all_step_info(workspace_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Every step's classic entry, as plain (mutable) dicts."""
    return {name: dict(entry) for name, entry in _map("step_names", workspace_id).items()}


def validate_step_name(step_name: str, workspace_id: str | None = None) -> bool:
    return step_name in _map("step_names", workspace_id)


def validate_spec_type(spec_type: str, workspace_id: str | None = None) -> bool:
    return spec_type.split("_", 1)[0] in set(_map("spec", workspace_id).values())


def get_steps_by_sagemaker_type(sagemaker_type: str, workspace_id: str | None = None) -> list[str]:
    return [
        name
        for name, entry in _map("step_names", workspace_id).items()
        if entry["sagemaker_step_type"] == sagemaker_type
    ]


def get_all_sagemaker_step_types(workspace_id: str | None = None) -> list[str]:
    return sorted({e["sagemaker_step_type"] for e in _map("step_names", workspace_id).values()})


def get_sagemaker_step_type_mapping(workspace_id: str | None = None) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for name, entry in _map("step_names", workspace_id).items():
        mapping.setdefault(entry["sagemaker_step_type"], []).append(name)
    return mapping


def get_canonical_name_from_file_name(file_name: str, workspace_id: str | None = None) -> str:
    """The registered step a file name belongs to (``xgboost_training`` → ``XGBoostTraining``)."""
    if not file_name:
        raise InvalidNameError(file_name, "is empty, not a file name")
    registry = _registry or get_registry()
    names = _map("step_names", workspace_id)
    found = canonical_name_from_file_name(
        file_name, names, job_types=registry.job_types(workspace_id)
    )
    if found is None:
        stem = file_name.rsplit("/", 1)[-1].removesuffix(".py")
        raise UnknownStepError(stem, names)
    return found


def validate_file_name(file_name: str, workspace_id: str | None = None) -> bool:
    """True when the file name resolves to a registered step."""
    try:
        get_canonical_name_from_file_name(file_name, workspace_id)
    except (UnknownStepError, InvalidNameError):
        return False
    return True


def list_available_workspaces() -> list[str]:
    """Workspace ids of the registry, in precedence order."""
    return list((_registry or get_registry()).workspace_ids)
