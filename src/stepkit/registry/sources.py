"""Reading registry sources — ``registry.toml``, a YAML table, a Python file or the
interface files a registry is derived from — without importing them.

A Python registry is read with :mod:`ast`: its literal ``STEP_NAMES`` (and, in a developer
workspace, ``LOCAL_STEPS`` and ``STEP_OVERRIDES``) dicts, so an existing ``step_names.py``
works unchanged and a broken or hostile one can do no harm. Parsed sources are cached in
the catalog index (:data:`INDEX_FILE` under the state directory, table
``registry_sources``), keyed by the file's size, mtime and inode (as ``.pyc`` files are),
because parsing a 10,000-step file costs more than everything else put together.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import tomli

from stepkit.child import parse_source
from stepkit.errors import RegistryFileError
from stepkit.literals import NotLiteral, literal_eval
from stepkit.names import close_matches
from stepkit.registry.definitions import FIELDS, REQUIRED_FIELDS, Origin, RegistryEntry
from stepkit.sqlite import connect, transaction

#: Module-level names read from a Python registry, and what their entries are.
PYTHON_TABLES: Final[Mapping[str, str]] = {
    "STEP_NAMES": "define",
    "LOCAL_STEPS": "define",
    "STEP_OVERRIDES": "override",
}
_CACHE_FORMAT: Final = 3  # bump whenever parsing changes what a cached entry holds
#: The catalog index, relative to the state directory: it holds the registry cache too.
INDEX_FILE: Final = Path("catalog", "index.sqlite")


@dataclass(frozen=True, slots=True)
class RegistrySource:
    """The entries of one registry file, in file order."""

    path: Path
    workspace_id: str
    entries: tuple[RegistryEntry, ...]


def read_registry(
    path: Path, workspace_id: str, *, state_dir: Path | None = None
) -> RegistrySource:
    """Read one registry file (``.toml``, ``.yaml`` or ``.py``, or a folder of interface
    files); with ``state_dir``, a parse cached in its catalog index is reused while the
    file's size, mtime and inode are unchanged."""
    if path.is_dir():
        return derive_registry(path, workspace_id)
    try:
        st = path.stat()
    except OSError as exc:
        raise RegistryFileError(path, f"cannot be read: {exc.strerror}") from exc
    signature = json.dumps([_CACHE_FORMAT, st.st_size, st.st_mtime_ns, st.st_ino])
    index = state_dir / INDEX_FILE if state_dir is not None else None
    if index is not None:
        cached = _read_cache(index, path, workspace_id, signature)
        if cached is not None:
            return _from_plain(path, workspace_id, cached)
    source = _parse(path, workspace_id)
    if index is not None:
        _write_cache(index, path, workspace_id, signature, _to_plain(source))
    return source


def _parse(path: Path, workspace_id: str) -> RegistrySource:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryFileError(path, f"cannot be read: {exc}") from exc
    if path.suffix == ".toml":
        entries = _parse_toml(path, workspace_id, text)
    elif path.suffix in (".yaml", ".yml"):
        entries = _parse_yaml(path, workspace_id, text)
    else:
        entries = _parse_python(path, workspace_id, text)
    return RegistrySource(path=path, workspace_id=workspace_id, entries=tuple(entries))


# -- TOML ------------------------------------------------------------------------------------

_TOML_HEADER = re.compile(r'^[ \t]*\[\s*steps\s*\.\s*"?([^"\]\s]+)"?\s*\]', re.MULTILINE)


def _parse_toml(path: Path, workspace_id: str, text: str) -> list[RegistryEntry]:
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise RegistryFileError(path, f"is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"steps"})
    if unknown:
        raise RegistryFileError(
            path, f"unknown table {unknown[0]!r}", suggestions=close_matches(unknown[0], ["steps"])
        )
    steps = data.get("steps", {})
    if not isinstance(steps, dict):
        raise RegistryFileError(path, "'steps' must be a table of tables ([steps.Name])")
    lines: dict[str, int] = {}
    line, pos = 1, 0
    for m in _TOML_HEADER.finditer(text):  # count newlines incrementally: linear, not O(n²)
        line += text.count("\n", pos, m.start())
        pos = m.start()
        lines[m.group(1)] = line
    entries = []
    for name, fields in steps.items():
        origin = Origin(workspace_id, path, lines.get(name))
        if not isinstance(fields, dict):
            raise RegistryFileError(path, f"steps.{name} must be a table", line=origin.line)
        fields = dict(fields)
        override = fields.pop("override", False)
        if not isinstance(override, bool):
            raise RegistryFileError(
                path, f"steps.{name}.override must be true or false", line=origin.line
            )
        kind = "override" if override else "define"
        entries.append(RegistryEntry(name, _checked(name, fields, kind, origin), kind, origin))
    return entries


# -- YAML (the framework's transition release: ``step_names: {Name: {...}}``) ---------------


def _parse_yaml(path: Path, workspace_id: str, text: str) -> list[RegistryEntry]:
    import yaml  # only registries written in YAML pay for PyYAML

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)  # nodes: values and their lines
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise RegistryFileError(path, f"is not valid YAML: {exc.problem}", line=line) from exc
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise RegistryFileError(path, "must be a mapping with a 'step_names' table", line=1)
    values = yaml.constructor.SafeConstructor()  # turns a node into plain values, safely
    entries: list[RegistryEntry] = []
    for key_node, table in root.value:
        kind = {"step_names": "define", "step_overrides": "override"}.get(key_node.value)
        line = key_node.start_mark.line + 1
        if kind is None:
            raise RegistryFileError(
                path,
                f"unknown table {key_node.value!r}",
                line=line,
                suggestions=close_matches(str(key_node.value), ["step_names", "step_overrides"]),
            )
        if not isinstance(table, yaml.MappingNode):
            raise RegistryFileError(path, f"{key_node.value} must be a mapping", line=line)
        for name_node, fields_node in table.value:
            name = name_node.value
            origin = Origin(workspace_id, path, name_node.start_mark.line + 1)
            try:
                fields = values.construct_object(fields_node, deep=True)
            except yaml.YAMLError as exc:  # a tag the safe constructor refuses
                raise RegistryFileError(
                    path, f"{name!r} is not plain data: {exc}", line=origin.line
                ) from exc
            if not isinstance(fields, dict):
                raise RegistryFileError(path, f"{name!r} must be a mapping", line=origin.line)
            entries.append(RegistryEntry(name, _checked(name, fields, kind, origin), kind, origin))
    return entries


# -- derived from interface files -------------------------------------------------------------


def derive_registry(folder: Path, workspace_id: str) -> RegistrySource:
    """One row per ``*.step.yaml`` of ``folder`` (its ``registry`` block, defaults filled
    in). A file that cannot be read is left out here: ``catalog check`` reports it."""
    from stepkit.errors import InterfaceFileError
    from stepkit.project import INTERFACE_SUFFIX
    from stepkit.registry.interface_nodes import summarize_interface

    rows: list[tuple[str, Mapping[str, Any]]] = []
    for path in sorted(folder.rglob(f"*{INTERFACE_SUFFIX}")):
        try:  # the rows as the catalog reads them: from the YAML nodes
            rows.append((str(path), summarize_interface(path.read_text("utf-8"), path=path)))
        except (InterfaceFileError, OSError, UnicodeDecodeError):
            continue
    return derived_source(folder, workspace_id, rows)


def derived_source(
    folder: Path, workspace_id: str, rows: list[tuple[str, Mapping[str, Any]]]
) -> RegistrySource:
    """The registry of ``folder`` from its interface files' summaries (path, summary), as
    :func:`stepkit.interface.interface_summary` makes them."""
    entries = []
    for path, summary in sorted(rows):
        origin = Origin(workspace_id, Path(path), summary["registry_line"])
        fields = _checked(summary["step"], dict(summary["registry"]), "define", origin)
        entries.append(RegistryEntry(summary["step"], fields, "derive", origin))
    return RegistrySource(path=folder, workspace_id=workspace_id, entries=tuple(entries))


# -- Python (ast, never imported) ----------------------------------------------------------


def _parse_python(path: Path, workspace_id: str, text: str) -> list[RegistryEntry]:
    try:
        tree = parse_source(text, str(path))  # CPython 3.11's ast.parse is not thread-safe
    except SyntaxError as exc:
        raise RegistryFileError(path, f"syntax error: {exc.msg}", line=exc.lineno) from exc
    entries: list[RegistryEntry] = []
    for node in tree.body:
        target, value = _assignment(node)
        if target is None or target not in PYTHON_TABLES or value is None:
            continue
        kind = PYTHON_TABLES[target]
        if not isinstance(value, ast.Dict):
            raise RegistryFileError(
                path,
                f"{target} is computed by code ({ast.unparse(value)[:60]}), which stepkit does "
                "not run; readable registries are a literal dict here, registry.toml, a YAML "
                "table (step_names:) or the interfaces folder they are derived from — point "
                "'registry =' in stepkit.toml at one of those",
                line=node.lineno,
            )
        for key_node, value_node in zip(value.keys, value.values, strict=True):
            line = (key_node or value_node).lineno
            if not (isinstance(key_node, ast.Constant) and isinstance(key_node.value, str)):
                raise RegistryFileError(path, f"{target} keys must be string literals", line=line)
            try:
                fields = literal_eval(value_node)
            except NotLiteral as exc:
                what = f"{target}[{key_node.value!r}] {exc.reason(value_node)}"
                raise RegistryFileError(path, what, line=exc.line or line) from exc
            name = key_node.value
            origin = Origin(workspace_id, path, line)
            if not isinstance(fields, dict):
                raise RegistryFileError(path, f"{target}[{name!r}] must be a dict", line=line)
            entries.append(RegistryEntry(name, _checked(name, fields, kind, origin), kind, origin))
    return entries


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return target.id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


# -- field checks ----------------------------------------------------------------------------


def _checked(name: str, fields: dict[str, Any], kind: str, origin: Origin) -> dict[str, Any]:
    for key, value in fields.items():
        if key not in FIELDS:
            raise RegistryFileError(
                origin.path,
                f"step {name!r}: unknown field {key!r}.",
                line=origin.line,
                suggestions=close_matches(key, FIELDS),
            )
        if key == "job_types":
            if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
                raise RegistryFileError(
                    origin.path,
                    f"step {name!r}: job_types must be a list of strings",
                    line=origin.line,
                )
        elif not isinstance(value, str):
            raise RegistryFileError(
                origin.path,
                f"step {name!r}: {key} must be a string, not {type(value).__name__}",
                line=origin.line,
            )
    if kind == "define":
        missing = [key for key in REQUIRED_FIELDS if key not in fields]
        if missing:
            raise RegistryFileError(
                origin.path, f"step {name!r}: missing field {missing[0]!r}", line=origin.line
            )
    return fields


# -- cache -----------------------------------------------------------------------------------


def _read_cache(index: Path, path: Path, workspace_id: str, signature: str) -> list[Any] | None:
    if not index.is_file():  # no catalog index yet: the catalog creates it, with the table
        return None
    try:
        conn = connect(index)
        try:
            found = conn.execute(
                "SELECT signature, entries FROM registry_sources "
                "WHERE path = ? AND workspace_id = ?",
                (str(path), workspace_id),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:  # an index being rebuilt, or another program's file: parse again
        return None
    if found is None or found[0] != signature:
        return None
    try:
        return json.loads(found[1])  # type: ignore[no-any-return]
    except ValueError:  # a damaged entry: parse again (and store it anew)
        return None


def _write_cache(
    index: Path, path: Path, workspace_id: str, signature: str, payload: list[Any]
) -> None:
    if not index.is_file():
        return
    try:
        conn = connect(index)
        try:
            with transaction(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO registry_sources VALUES (?, ?, ?, ?)",
                    (str(path), workspace_id, signature, json.dumps(payload)),
                )
        finally:
            conn.close()
    except sqlite3.Error:  # a read-only state dir only costs speed: the cache is an optimisation
        return


def _to_plain(source: RegistrySource) -> list[Any]:
    return [
        [
            e.name,
            {k: list(v) if isinstance(v, tuple) else v for k, v in e.fields.items()},
            e.kind,
            e.origin.line,
        ]
        for e in source.entries
    ]


def _from_plain(path: Path, workspace_id: str, payload: list[Any]) -> RegistrySource:
    entries = tuple(
        RegistryEntry(name, fields, kind, Origin(workspace_id, path, line))
        for name, fields, kind, line in payload
    )
    return RegistrySource(path=path, workspace_id=workspace_id, entries=entries)
