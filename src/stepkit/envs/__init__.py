"""Per-step virtual environments built from a contract's ``framework_requirements``.

``step_environment(contract, store=EnvStore(default_root(project)))`` gives the
environment a step's script runs in (None for a step that declares no requirements):
built with uv the first time (on an interpreter that fits), found again in well under a
millisecond after that, shared by every step that asks for the same requirements. See
docs/environments.md.
"""

from __future__ import annotations

from stepkit.envs.build import ensure_environment, rebuild_from_lock, step_environment
from stepkit.envs.interpreters import Interpreter, find_interpreters
from stepkit.envs.lockfile import Lock, read_lock
from stepkit.envs.modes import StepEnvironments, check_env_mode
from stepkit.envs.spec import EnvSpec, env_key
from stepkit.envs.store import Environment, EnvironmentUsage, EnvStore, default_root

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
