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
    catalog.parse_lazy()
    data = catalog.data
    out: list[Problem] = []
    for path, ws, message in data.walk_problems:
        out.append(Problem(_file_kind(message), message, Path(path), None, None, ws))
    for path, ws, line, message in data.resolved["problems"]:
        out.append(Problem(_file_kind(message), message, Path(path), line or None, None, ws))
    for path, row in data.files.items():
        if row[1] == "script":
            for line, message in (data.summary(path) or {}).get("problems", ()):
                out.append(
                    Problem(_file_kind(message), message, Path(path), line or None, None, row[0])
                )
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
        script = info.components.get("script")
        summary = catalog.summary(script.path) if script is not None else None
        if (
            script is not None
            and summary is not None
            and "main" in summary
            and summary["main"] is None
        ):
            message = f"script of step {name!r} has no main() entry point"
            out.append(Problem("script", message, script.path, None, name, script.workspace_id))
        for spec in info.specs.values():
            out.extend(_spec_problems(catalog, name, spec.path, contracts))
    return out


def _references(catalog: StepCatalog, name: str, contract: Any, scripts: set[str]) -> list[Problem]:
    if contract is None:
        return []
    summary = catalog.summary(contract.path) or {}
    out = []
    for var, line, entry in summary.get("contracts", ()):
        if isinstance(entry, str) and entry.removesuffix(".py") not in scripts:
            out.append(
                Problem(
                    "reference",
                    f"contract {var} of step {name!r}: entry point {entry!r} "
                    "names no script in any workspace",
                    contract.path,
                    line,
                    name,
                    contract.workspace_id,
                )
            )
    return out


def _spec_problems(
    catalog: StepCatalog, name: str, path: Path, contracts: set[str]
) -> list[Problem]:
    summary = catalog.summary(path) or {}
    out = []
    for var, line, _step, _job, _type, ref, node, n_deps, n_outs in summary.get("specs", ()):
        rule = _NODE_RULES.get(node or "")
        if rule is None:
            message = f"spec {var}: unknown node type {node!r}"
            out.append(Problem("node_type", message, path, line, name))
            continue
        if bool(n_deps) != rule[0]:
            need = "needs dependencies" if rule[0] else "must have no dependencies"
            out.append(Problem("node_type", f"spec {var}: {node} node {need}", path, line, name))
        if bool(n_outs) != rule[1]:
            need = "needs outputs" if rule[1] else "must have no outputs"
            out.append(Problem("node_type", f"spec {var}: {node} node {need}", path, line, name))
        if ref and ref[0] and ref[0].rsplit(".", 1)[-1] not in contracts:
            message = f"spec {var}: contract module {ref[0]!r} is in no workspace"
            out.append(Problem("reference", message, path, line, name))
    return out
