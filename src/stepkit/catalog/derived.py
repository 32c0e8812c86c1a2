"""Registries derived from interface files, as the catalog's index has them: one row per
interface summary the index keeps anyway (no file is read twice), the whole registry or
the rows of a few steps (what an edit to one interface changes)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stepkit.catalog.changes import Plan
from stepkit.catalog.store import read_definitions
from stepkit.errors import RegistryFileError
from stepkit.registry.layering import Registry
from stepkit.registry.sources import RegistrySource, derived_source, read_registry

if TYPE_CHECKING:
    from stepkit.project import Project
    from stepkit.registry.definitions import StepDefinition


def derived_workspaces(project: Project) -> set[str]:
    """The workspaces whose registry is derived from their interface files."""
    return {ws.id for ws in project.workspaces if ws.registry_file and ws.registry_file.is_dir()}


def registry_rows(summary: str | None) -> Any:
    """What a derived registry takes from an interface file's summary."""
    found = json.loads(summary).get("interface") if summary else None
    keys = ("step", "registry", "registry_line")
    return {key: found[key] for key in keys} if found else None


def index_registry(
    conn: sqlite3.Connection,
    project: Project,
    derived: set[str],
    fresh: Mapping[str, tuple[str, str | None]] | None = None,
    *,
    names: set[str] | None = None,
) -> Registry:
    """The project's registry; a derived one from the interface files' summaries in the
    index, with ``fresh`` (path → (workspace, summary; None: gone)) over the stored ones.
    With ``names``, only those steps' entries (each step layers on its own entries)."""
    sources: dict[str, RegistrySource | None] = {}
    sql = "SELECT path, summary FROM files WHERE kind = 'interface' AND workspace_id = ?"
    if names is not None:
        sql += " AND json_extract(summary, '$.interface.step') IN (SELECT value FROM json_each(?))"
    for workspace_id in derived:
        args = [workspace_id] if names is None else [workspace_id, json.dumps(sorted(names))]
        texts = dict(conn.execute(sql, args).fetchall())
        texts.update((p, text) for p, (ws, text) in (fresh or {}).items() if ws == workspace_id)
        found = []
        for path, text in texts.items():
            summary = json.loads(text).get("interface") if text else None
            if summary is not None and (names is None or summary["step"] in names):
                found.append((path, summary))  # an unreadable interface has no row
        folder = project.workspace(workspace_id).registry_file
        assert folder is not None  # a derived workspace has its interfaces folder
        sources[workspace_id] = derived_source(folder, workspace_id, found)
    if names is None:
        return Registry.load(project, derived={k: v for k, v in sources.items() if v is not None})
    for ws in project.workspaces:  # the others' entries of these names (cached)
        if ws.id not in derived and ws.registry_file is not None:
            try:
                source = read_registry(ws.registry_file, ws.id, state_dir=project.state_dir)
            except RegistryFileError:  # reported by the whole registry; no entries here
                continue
            entries = tuple(e for e in source.entries if e.name in names)
            sources[ws.id] = RegistrySource(source.path, ws.id, entries)
    return Registry(sources, project.workspace_ids)


def changed_rows(plan: Plan, summaries: Mapping[str, str], derived: set[str]) -> set[str]:
    """The steps whose row in a derived registry the walk changes (before and after)."""
    names: set[str] = set()
    for path in (*plan.fresh, *plan.gone):
        now, old = plan.now.get(path), plan.before.get(path)
        either = now or old
        if either is None or either.kind != "interface":
            continue
        if either.workspace_id not in derived:
            continue
        before = registry_rows(old.summary if old else None)
        after = registry_rows(summaries.get(path) if now else None)
        if before != after:
            names.update(row["step"] for row in (before, after) if row)
    return names


def narrow(conn: sqlite3.Connection, names: set[str], now: Mapping[str, StepDefinition]) -> bool:
    """Whether resolving the changed files again is enough for these new definitions:
    steps added or gone, or only descriptions and step types changed (other fields
    move files between steps)."""
    stored = read_definitions(conn, names=names, origins=False)
    wide = ("config_class", "builder_step_name", "spec_type", "job_types")
    return all(
        getattr(stored[name], field) == getattr(definition, field)
        for name, definition in now.items()
        if name in stored
        for field in wide
    )
