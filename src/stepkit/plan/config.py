"""The pipeline config file, and each node's config, environment and arguments from it.

The file (YAML or JSON)::

    shared:            # applies to every node whose config class declares the field
      label_field: churned
    nodes:
      DataLoading_training:
        n_rows: 6000

Each node's values are validated by its step's config class (imported here, at plan time,
never during discovery). A script's environment follows its contract: every required and
optional env var ``FOO`` takes the config field ``foo`` when the config has one, else the
contract's default; every expected argument likewise. The node's job type always wins.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.errors import DagFileError, PlanError
from stepkit.names import close_matches

if TYPE_CHECKING:
    from stepkit.components import ScriptContract, StepConfig


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What a config file says: shared values and per-node sections."""

    shared: Mapping[str, Any] = field(default_factory=dict)
    nodes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: Path | None = None


def load_pipeline_config(path: Path | None) -> PipelineConfig:
    """Read a YAML or JSON config file (``None``: an empty config)."""
    if path is None:
        return PipelineConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DagFileError(path, f"cannot be read: {exc}") from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DagFileError(path, f"is not valid JSON: {exc.msg}", line=exc.lineno) from exc
    else:
        import yaml

        from stepkit.plan.dagfile import yaml_error

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise yaml_error(path, exc) from exc
    data = data or {}
    if not isinstance(data, dict):
        raise DagFileError(path, "must be a mapping with 'shared' and 'nodes'")
    unknown = sorted(set(data) - {"shared", "nodes"})
    if unknown:
        raise DagFileError(
            path,
            f"unknown key {unknown[0]!r}",
            suggestions=close_matches(unknown[0], ["shared", "nodes"]),
        )
    shared, nodes = data.get("shared") or {}, data.get("nodes") or {}
    if not isinstance(shared, dict):
        raise DagFileError(path, "'shared' must be a mapping of field: value")
    if not isinstance(nodes, dict) or not all(isinstance(v, dict | None) for v in nodes.values()):
        raise DagFileError(path, "'nodes' must map node names to mappings of field: value")
    return PipelineConfig(
        shared=dict(shared), nodes={k: dict(v or {}) for k, v in nodes.items()}, source=path
    )


def check_config_nodes(config: PipelineConfig, nodes: list[str]) -> None:
    """A section for a node the DAG does not have is a typo until proved otherwise."""
    for name in config.nodes:
        if name not in nodes:
            raise PlanError(
                name,
                f"the config file has a section for {name!r}, which is not a node of the DAG.",
                suggestions=close_matches(name, nodes),
            )


#: Held while a step file is imported: a half-executed module is never seen by another plan.
_IMPORTING = threading.RLock()


def import_class(path: Path, class_name: str, *, node: str) -> type[Any]:
    """Import ``class_name`` from a step file, under a private module name."""
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]
    module_name = f"stepkit_steps_{digest}_{path.stem}"
    with _IMPORTING:  # two plans in one process (two runs at once) import it once
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise PlanError(node, f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # user code: any failure is reported as the node's error
                del sys.modules[module_name]
                raise PlanError(
                    node, f"importing {path.name} failed: {type(exc).__name__}: {exc}"
                ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise PlanError(node, f"{path.name} defines no class {class_name!r}")
    return cls


def node_config(
    config_class: type[StepConfig], *, node: str, job_type: str | None, config: PipelineConfig
) -> StepConfig:
    """The node's validated config: shared values the class declares, then the node's own."""
    from pydantic import ValidationError

    from stepkit.errors import validation_message

    declared = config_class.model_fields
    values: dict[str, Any] = {k: v for k, v in config.shared.items() if k in declared}
    values.update(config.nodes.get(node, {}))
    if job_type is not None and "job_type" in declared:
        values["job_type"] = job_type
    try:
        return config_class(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(config)"
        hint = ""
        if error["type"] == "extra_forbidden":
            near = close_matches(str(error["loc"][-1]), declared)
            hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            message = "unknown field"
        else:
            message = validation_message(error)
        raise PlanError(node, f"config field {where}: {message}.{hint}") from exc


def script_environment(
    contract: ScriptContract, step_config: StepConfig, *, node: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(environment variables, job arguments) for the node's script, from config and contract."""
    values = step_config.model_dump()
    env: dict[str, str] = {}
    for var in contract.required_env_vars:
        value = values.get(var.lower())
        if value is None:
            raise PlanError(
                node,
                f"required env var {var} has no value: set {var.lower()!r} in the node's "
                "config (or under 'shared')",
            )
        env[var] = _text(value)
    for var, default in contract.optional_env_vars.items():
        value = values.get(var.lower())
        env[var] = _text(value) if value is not None else default
    # job arguments from the config's fields (job_type included): a description is no value
    return env, contract.argument_values(config=values)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)
