"""``catalog check``: every problem the catalog can see, each with its place and step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.catalog.records import Problem

if TYPE_CHECKING:
    from stepkit.catalog.catalog import StepCatalog

_NODE_RULES = {  # node type → (has dependencies, has outputs)
    "source": (False, True),
    "internal": (True, True),
    "sink": (True, False),
    "singular": (False, False),
}


def _file_kind(message: str) -> str:
    if message.startswith("syntax error"):
        return "syntax"
    if message.startswith(("cannot be", "is not UTF-8", "symlink loop", "steps folder")):
        return "unreadable"
    return "not_literal"


def find_problems(catalog: StepCatalog) -> list[Problem]:
    """Problems in a stable order: files first, then steps by name."""
    data = catalog.data
    out: list[Problem] = []
    for path, ws, message in data.walk_problems:
        out.append(Problem(_file_kind(message), message, Path(path), None, None, ws))
    for path, ws, line, message in data.resolved["problems"]:
        out.append(Problem(_file_kind(message), message, Path(path), line or None, None, ws))
    for path, ws, component, message in data.resolved["unmatched"]:
        out.append(Problem("unmatched", f"{component} file {message}", Path(path), None, None, ws))
    if not data.files:
        for workspace in catalog.project.workspaces:
            out.append(
                Problem(
                    "empty",
                    "no component files in this workspace",
                    workspace.steps_dir,
                    workspace_id=workspace.id,
                )
            )
    scripts = {Path(p).stem for p, row in data.files.items() if row[1] == "script"}
    contracts = {Path(p).stem for p, row in data.files.items() if row[1] == "contract"}
    for name in catalog.step_names():
        info = catalog.get_step_info(name)
        where = next(iter(info.components.values()), None)
        path = where.path if where else None
        if not info.registered:
            found = ", ".join(sorted({*info.components, *("spec" for _ in info.specs)}))
            out.append(
                Problem(
                    "unregistered",
                    f"step {name!r} has components ({found}) but no registry entry",
                    path,
                    step=name,
                    workspace_id=info.workspace_id,
                )
            )
        elif info.missing:
            out.append(
                Problem(
                    "incomplete",
                    f"step {name!r} ({info.step_type}) is missing {', '.join(info.missing)}",
                    path,
                    step=name,
                    workspace_id=info.workspace_id,
                )
            )
        out.extend(_references(catalog, name, info.components.get("contract"), scripts))
        for spec in info.specs.values():
            out.extend(_spec_problems(catalog, name, spec.path, contracts))
    return out


def _references(catalog: StepCatalog, name: str, contract: Any, scripts: set[str]) -> list[Problem]:
    if contract is None:
        return []
    facts = catalog.facts(contract.path) or {}
    out = []
    for c in facts.get("contracts", ()):
        entry = c["fields"].get("entry_point")
        if isinstance(entry, str) and entry.removesuffix(".py") not in scripts:
            out.append(
                Problem(
                    "reference",
                    f"contract {c['var']} of step {name!r}: entry point {entry!r} "
                    "names no script in any workspace",
                    contract.path,
                    c["line"],
                    name,
                    contract.workspace_id,
                )
            )
    return out


def _spec_problems(
    catalog: StepCatalog, name: str, path: Path, contracts: set[str]
) -> list[Problem]:
    facts = catalog.facts(path) or {}
    out = []
    for spec in facts.get("specs", ()):
        rule = _NODE_RULES.get(spec.get("node_type") or "")
        if rule is None:
            out.append(
                Problem(
                    "node_type",
                    f"spec {spec['var']}: unknown node type {spec.get('node_type')!r}",
                    path,
                    spec["line"],
                    name,
                )
            )
            continue
        node = spec["node_type"]
        has_deps, has_outs = bool(spec["dependencies"]), bool(spec["outputs"])
        if has_deps != rule[0]:
            need = "needs dependencies" if rule[0] else "must have no dependencies"
            out.append(
                Problem(
                    "node_type", f"spec {spec['var']}: {node} node {need}", path, spec["line"], name
                )
            )
        if has_outs != rule[1]:
            need = "needs outputs" if rule[1] else "must have no outputs"
            out.append(
                Problem(
                    "node_type", f"spec {spec['var']}: {node} node {need}", path, spec["line"], name
                )
            )
        ref = spec.get("contract_ref")
        if ref and ref[0]:
            stem = ref[0].rsplit(".", 1)[-1]
            if stem not in contracts:
                out.append(
                    Problem(
                        "reference",
                        f"spec {spec['var']}: contract module {ref[0]!r} is in no workspace",
                        path,
                        spec["line"],
                        name,
                    )
                )
    return out
