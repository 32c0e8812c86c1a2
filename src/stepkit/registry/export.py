"""Rendering a registry view as JSON or as a literal ``STEP_NAMES`` Python module."""

from __future__ import annotations

import json
import pprint

from stepkit.registry.layering import Registry


def render_json(registry: Registry, workspace_id: str | None = None) -> str:
    """``{name: entry}`` for the view, sorted, as JSON text."""
    view = registry.classic(workspace_id)
    return (
        json.dumps({name: dict(view[name]) for name in sorted(view)}, indent=2, sort_keys=True)
        + "\n"
    )


def render_python(registry: Registry, workspace_id: str | None = None) -> str:
    """A module holding one literal ``STEP_NAMES`` dict: stepkit reads it back with ``ast``."""
    view = registry.classic(workspace_id)
    data = {name: dict(view[name]) for name in sorted(view)}
    ws = workspace_id or registry.core_id
    body = pprint.pformat(data, indent=4, width=100, sort_dicts=True)
    return (
        f'"""Step registry exported by stepkit ({ws} view). Read with ast, never imported."""\n\n'
        f"STEP_NAMES = {body}\n"
    )
