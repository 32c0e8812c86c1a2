"""Rendering a registry view as JSON or as a literal ``STEP_NAMES`` Python module."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from stepkit.registry.layering import Registry

_INDENT = "    "
_WIDTH = 100


def render_json(registry: Registry, workspace_id: str | None = None) -> str:
    """``{name: entry}`` for the view, sorted, as JSON text."""
    view = registry.classic(workspace_id)
    return (
        json.dumps({name: dict(view[name]) for name in sorted(view)}, indent=2, sort_keys=True)
        + "\n"
    )


def render_python(registry: Registry, workspace_id: str | None = None) -> str:
    """A module holding one literal ``STEP_NAMES`` dict, laid out as a formatter would
    (one key per line, trailing commas, double quotes): stepkit reads it back with ``ast``."""
    view = registry.classic(workspace_id)
    data = {name: dict(view[name]) for name in sorted(view)}
    ws = workspace_id or registry.core_id
    return (
        f'"""Step registry exported by stepkit ({ws} view). Read with ast, never imported."""\n\n'
        f"STEP_NAMES = {python_literal(data, level=0, column=len('STEP_NAMES = '))}\n"
    )


def python_literal(value: Any, *, level: int, column: int) -> str:
    """``value`` (dicts, lists, strings, numbers, bools, None) as Python source starting at
    ``column`` of a line indented ``level`` times: a dict or a list that does not fit in
    the line is split one item per line, keys sorted, each item ending in a comma."""
    flat = _flat(value)
    if column + len(flat) + 1 <= _WIDTH or not _splittable(value):
        return flat
    inner = _INDENT * (level + 1)
    if isinstance(value, Mapping):
        opening, closing = "{", "}"
        items = []
        for key in sorted(value):
            head = f"{inner}{_flat(key)}: "
            items.append(head + python_literal(value[key], level=level + 1, column=len(head)))
    else:
        opening, closing = "[", "]"
        items = [inner + python_literal(v, level=level + 1, column=len(inner)) for v in value]
    return f"{opening}\n" + "".join(f"{item},\n" for item in items) + _INDENT * level + closing


def _splittable(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str)
    )


def _flat(value: Any) -> str:
    """The one-line form; a JSON string literal is a valid Python one (double-quoted)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_flat(item) for item in value) + "]"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a registry literal")
