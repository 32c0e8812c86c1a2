"""The step registry: definitions per workspace, layered, with the active workspace in context."""

from __future__ import annotations

from stepkit.registry.check import Problem, check_registry
from stepkit.registry.context import (
    active_workspace,
    clear_workspace_context,
    get_workspace_context,
    set_workspace_context,
    workspace_context,
)
from stepkit.registry.definitions import KNOWN_STEP_TYPES, Origin, StepDefinition
from stepkit.registry.layering import LayerReport, Override, Registry, RegistryProblem

__all__ = [
    "KNOWN_STEP_TYPES",
    "LayerReport",
    "Origin",
    "Override",
    "Problem",
    "Registry",
    "RegistryProblem",
    "StepDefinition",
    "active_workspace",
    "check_registry",
    "clear_workspace_context",
    "get_workspace_context",
    "set_workspace_context",
    "workspace_context",
]
