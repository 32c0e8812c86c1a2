"""Records to and from JSON-ready values: every backend stores the same representation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def dumps(value: Mapping[str, Any]) -> str:
    """Compact, key-sorted JSON (so equal mappings store as equal text)."""
    if not value:
        return "{}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> dict[str, Any]:
    if not text or text == "{}":
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def graph_dumps(graph: Mapping[str, tuple[str, ...]]) -> str:
    return json.dumps({k: list(v) for k, v in graph.items()}, separators=(",", ":"))


def graph_loads(text: str | None) -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in loads(text).items()}
