"""What ``catalog list`` shows per step, built once per resolution and kept in the index.

A row is [name, step type, job types, workspaces, JSON text]: the first four filter
(``--type``, ``--job-type``, ``--workspace``), the last is printed as it is, so a warm
``catalog list --json`` decodes and prints without rebuilding anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stepkit.catalog.records import required_components
from stepkit.catalog.resolution import JOB_TYPES, STEP_TYPE, WORKSPACE, Parts


def job_types(parts: Parts, row: Sequence[Any] | None) -> list[str]:
    """A step's job types: those its specs declare and those its definition lists."""
    found = {entry[2] for entry in parts.get("spec", ()) if entry[2]}
    if row is not None and row[JOB_TYPES]:
        found.update(row[JOB_TYPES])
    return sorted(found) if len(found) > 1 else list(found)


def step_row(
    name: str,
    parts: Parts,
    row: Sequence[Any] | None,
    rank: Mapping[str, int],
) -> dict[str, Any]:
    """One step as ``catalog list --json`` prints it."""
    present = {c: entries[0][1] for c, entries in parts.items() if entries}
    kind = row[STEP_TYPE] if row else None
    missing = [c for c in required_components(kind) if c not in present]
    spaces = [*present.values(), *([row[WORKSPACE]] if row else [])]
    return {
        "name": name,
        "workspace_id": min(spaces, key=lambda ws: rank.get(ws, len(rank)), default=""),
        "registered": row is not None,
        "step_type": kind,
        "job_types": job_types(parts, row),
        "components": present,
        "complete": row is not None and not missing,
        "missing": missing,
    }


def workspaces_of(parts: Parts, row: Sequence[Any] | None) -> list[str]:
    """Every workspace a step has a component or its definition in."""
    found = {entry[1] for entries in parts.values() for entry in entries}
    if row is not None:
        found.add(row[WORKSPACE])
    return sorted(found)


def build_listing(
    steps: Mapping[str, Parts],
    registry: Mapping[str, Sequence[Any]],
    workspace_ids: Sequence[str],
) -> list[tuple[Any, ...]]:
    rank = {ws: i for i, ws in enumerate(workspace_ids)}
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
    out = []
    for name in sorted({*steps, *registry}):
        parts = steps.get(name, {})
        row = registry.get(name)
        data = step_row(name, parts, row, rank)
        jobs, spaces = tuple(data["job_types"]), tuple(workspaces_of(parts, row))
        out.append((name, data["step_type"], jobs, spaces, encode(data)))  # untracked by gc
    return out


def select(
    listing: Iterable[Sequence[Any]],
    *,
    workspace_id: str | None = None,
    job_type: str | None = None,
    step_type: str | None = None,
) -> list[str]:
    """The JSON rows of the steps that pass the filters, in name order."""
    return [
        text
        for _name, kind, jobs, spaces, text in listing
        if (step_type is None or kind == step_type)
        and (job_type is None or job_type in jobs)
        and (workspace_id is None or workspace_id in spaces)
    ]
