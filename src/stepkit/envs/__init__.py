"""Per-step virtual environments built from a contract's ``framework_requirements``.

``step_environment(contract, store=EnvStore(default_root(project)))`` gives the
environment a step's script runs in (None for a step that declares no requirements):
built with uv the first time (on an interpreter that fits), found again in well under a
millisecond after that, shared by every step that asks for the same requirements. See
docs/environments.md.

The names below are loaded on first use, so that a stage's child importing one small
module of this package (``stepkit.envs.launch``) does not pay for the builder's imports.
"""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a stage's child)
if TYPE_CHECKING:
    from typing import Any

    from stepkit.envs.build import ensure_environment, rebuild_from_lock, step_environment
    from stepkit.envs.interpreters import Interpreter, find_interpreters
    from stepkit.envs.lockfile import Lock, read_lock
    from stepkit.envs.modes import StepEnvironments, check_env_mode
    from stepkit.envs.spec import EnvSpec, env_key
    from stepkit.envs.store import Environment, EnvironmentUsage, EnvStore, default_root

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "EnvSpec": "stepkit.envs.spec",
    "EnvStore": "stepkit.envs.store",
    "Environment": "stepkit.envs.store",
    "EnvironmentUsage": "stepkit.envs.store",
    "Interpreter": "stepkit.envs.interpreters",
    "Lock": "stepkit.envs.lockfile",
    "StepEnvironments": "stepkit.envs.modes",
    "check_env_mode": "stepkit.envs.modes",
    "default_root": "stepkit.envs.store",
    "ensure_environment": "stepkit.envs.build",
    "env_key": "stepkit.envs.spec",
    "find_interpreters": "stepkit.envs.interpreters",
    "read_lock": "stepkit.envs.lockfile",
    "rebuild_from_lock": "stepkit.envs.build",
    "step_environment": "stepkit.envs.build",
}

__all__ = [
    "EnvSpec",
    "EnvStore",
    "Environment",
    "EnvironmentUsage",
    "Interpreter",
    "Lock",
    "StepEnvironments",
    "check_env_mode",
    "default_root",
    "ensure_environment",
    "env_key",
    "find_interpreters",
    "read_lock",
    "rebuild_from_lock",
    "step_environment",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stepkit.envs' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
