"""``catalog check``: every problem the catalog can see, each with its place and step."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from stepkit.catalog.catalog import StepCatalog
from stepkit.catalog.records import ComponentFile, Problem, StepInfo, is_abstract

_NODE_RULES: Final = {  # node type → (has dependencies, has outputs)
    "source": (False, True),
    "internal": (True, True),
    "sink": (True, False),
    "singular": (False, False),
}


def _file_kind(message: str, path: str = "") -> str:
    if message.startswith(("syntax error", "is not valid YAML")):
        return "syntax"
    if message.startswith(("cannot be", "is not UTF-8", "symlink loop", "steps folder")):
        return "unreadable"
    return "interface" if path.endswith(".step.yaml") else "not_literal"


def _stem(path: str) -> str:
    """A Python file's module name (a string split: a Path per file costs more here)."""
    return path.rpartition("/")[2].removesuffix(".py")


def find_problems(catalog: StepCatalog) -> list[Problem]:
    """Problems in a stable order: files first, then steps by name."""
    session = catalog.session
    session.ensure_walked()
    conn = session.conn
    kinds: dict[str, list[str]] = {}
    workspace_of: dict[str, str] = {}
    for path, kind, workspace_id in conn.execute(
        "SELECT path, kind, workspace_id FROM files ORDER BY path"
    ):
        kinds.setdefault(kind, []).append(path)
        workspace_of[path] = workspace_id
    summaries = session.summaries(workspace_of)  # scripts are parsed now
    # A registry file that cannot be read hurts only its workspace: reported here, not raised.
    out = [
        Problem("registry", str(left_out.error), None, None, None, left_out.workspace_id)
        for left_out in session.registry().problems
    ]
    out += [
        Problem(_file_kind(message), message, Path(path), None, None, ws)
        for path, ws, message in conn.execute(
            "SELECT path, workspace_id, message FROM walk_problems ORDER BY path, message"
        )
    ]
    for path, ws in workspace_of.items():
        for line, message in summaries[path].get("problems", ()):
            kind = _file_kind(message, path)
            out.append(Problem(kind, message, Path(path), line or None, None, ws))
    for path, ws, component, message in conn.execute(
        "SELECT path, workspace_id, component, message FROM unmatched ORDER BY path, component"
    ):
        out.append(Problem("unmatched", f"{component} file {message}", Path(path), None, None, ws))
    if not kinds:
        for workspace in catalog.project.workspaces:
            message = "no component files in this workspace"
            out.append(Problem("empty", message, workspace.steps_dir, workspace_id=workspace.id))
    scripts = {_stem(p) for p in kinds.get("script", ())}
    contracts = {_stem(p) for p in kinds.get("contract", ())}
    for info in catalog.steps():
        out += _duplicates(info)
        if not is_abstract(info.definition, has_files=bool(info.components or info.specs)):
            out += _step_problems(info, summaries, scripts, contracts)
    return out


def _duplicates(info: StepInfo) -> list[Problem]:
    """Two files of one workspace and one layout declaring the same node (a generic spec
    and a job-type spec both for ``X_training``; two interfaces of one step): only one of
    them can be in effect, and which is an accident of file names."""
    first: dict[tuple[str, str | None, bool], ComponentFile] = {}
    out = []
    for entry in (*info.specs.values(), *info.shadowed):
        if entry.component != "spec":
            continue
        key = (entry.workspace_id, entry.job_type, entry.via == "interface")
        kept = first.setdefault(key, entry)
        if kept is entry or kept.location == entry.location:
            continue
        node = f"{info.name}_{entry.job_type}" if entry.job_type else info.name
        message = (
            f"declares {node} as {kept.path} does, in the same workspace "
            f"{entry.workspace_id!r}: only {kept.path.name} is used"
        )
        out.append(Problem("duplicate", message, entry.path, None, info.name, entry.workspace_id))
    return out


def _step_problems(
    info: StepInfo,
    summaries: Mapping[str, Mapping[str, Any]],
    scripts: set[str],
    contracts: set[str],
) -> list[Problem]:
    name = info.name
    where = next(iter(info.components.values()), None)
    path = where.path if where else None
    out: list[Problem] = []
    if not info.registered:
        found = ", ".join(sorted({*info.components, *("spec" for _ in info.specs)}))
        message = f"step {name!r} has components ({found}) but no registry entry"
        out.append(
            Problem("unregistered", message, path, step=name, workspace_id=info.workspace_id)
        )
    elif info.missing:
        message = f"step {name!r} ({info.step_type}) is missing {', '.join(info.missing)}"
        out.append(Problem("incomplete", message, path, step=name, workspace_id=info.workspace_id))
    contract = info.components.get("contract")
    if contract is not None and contract.via == "interface":
        facts = summaries.get(contract.location, {}).get("interface") or {}
        named = str(facts.get("entry_point") or "")
        if named and "script" in info.required and named.removesuffix(".py") not in scripts:
            message = (
                f"interface of step {name!r}: entry point {named!r} names no script in any "
                "workspace"
            )
            out.append(
                Problem("reference", message, contract.path, None, name, contract.workspace_id)
            )
    elif contract is not None:
        for c in summaries.get(contract.location, {}).get("contracts", ()):
            entry = c["entry_point"]
            if isinstance(entry, str) and entry.removesuffix(".py") not in scripts:
                message = (
                    f"contract {c['var']} of step {name!r}: entry point {entry!r} "
                    "names no script in any workspace"
                )
                out.append(
                    Problem(
                        "reference", message, contract.path, c["line"], name, contract.workspace_id
                    )
                )
    script = info.components.get("script")
    summary = summaries.get(script.location) if script is not None else None
    if script is not None and summary is not None and "main" in summary and summary["main"] is None:
        message = f"script of step {name!r} has no main() entry point"
        out.append(Problem("script", message, script.path, None, name, script.workspace_id))
    for spec in info.specs.values():
        if spec.via == "interface" and spec.job_type is None:
            out += _interface_problems(name, spec.path, summaries.get(spec.location, {}))
        elif spec.via != "interface":
            out += _spec_problems(name, spec.path, summaries.get(spec.location, {}), contracts)
    return out


def _node_problems(what: str, node: str, facts: Mapping[str, Any]) -> list[str]:
    """What a node type says of a spec's dependencies and outputs, as messages."""
    rule = _NODE_RULES.get(node or "")
    if rule is None:
        return [f"{what}: unknown node type {node!r}"]
    out = []
    for key, wanted in zip(("dependencies", "outputs"), rule, strict=True):
        if bool(facts[key]) != wanted:
            out.append(f"{what}: {node} node {'needs' if wanted else 'must have no'} {key}")
    return out


def _interface_problems(name: str, path: Path, summary: Mapping[str, Any]) -> list[Problem]:
    """An interface's node type against its base spec (variants only add or change)."""
    found = summary.get("interface")
    if found is None:
        return []
    messages = _node_problems(f"interface of {name}", found["node_type"], found)
    return [Problem("node_type", m, path, None, name) for m in messages]


def _spec_problems(
    name: str, path: Path, summary: Mapping[str, Any], contracts: set[str]
) -> list[Problem]:
    out = []
    for s in summary.get("specs", ()):
        var, line, ref = s["var"], s["line"], s["contract_ref"]
        for message in _node_problems(f"spec {var}", s["node_type"], s):
            out.append(Problem("node_type", message, path, line, name))
        module = ref[0] if ref else None  # [module, name]: where script_contract= comes from
        if module and module.rsplit(".", 1)[-1] not in contracts:
            message = f"spec {var}: contract module {module!r} is in no workspace"
            out.append(Problem("reference", message, path, line, name))
    return out
