"""Interface files read at the level of their YAML nodes: what the catalog's index keeps of
each (:func:`summarize_interface`), without the models — so indexing thousands of them
needs neither pydantic nor the construction of values no index column holds. The whole
file becomes models in :mod:`stepkit.interface`, by the same rules for what both read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from stepkit.errors import InterfaceFileError
from stepkit.names import close_matches
from stepkit.registry.definitions import Origin, RegistryEntry

#: ``node_type`` values: those of :class:`stepkit.components.NodeType` (a test holds them equal).
NODE_TYPES: Final = ("source", "internal", "sink", "singular")

LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TOP_KEYS: Final = ("step_type", "node_type", "registry", "contract", "spec", "variants")
METADATA_KEYS: Final = ("compute", "patterns")
REGISTRY_KEYS: Final = (
    "sagemaker_step_type",
    "description",
    "config_class",
    "builder_step_name",
    "spec_type",
    "requires",
)


class NodeReader:
    """Checks an interface's mappings and registry row; finds the line of a key only on
    error (the models are built by :mod:`stepkit.interface`)."""

    def __init__(self, text: str, path: Path, workspace_id: str) -> None:
        self.text, self.path, self.workspace_id = text, path, workspace_id

    # -- errors ---------------------------------------------------------------------------

    def fail(self, where: tuple[str | int, ...], message: str) -> InterfaceFileError:
        return InterfaceFileError(self.path, message, line=_line_of(self.text, where))

    def mapping(self, value: Any, where: tuple[str | int, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            label = ".".join(str(part) for part in where) or "the file"
            raise self.fail(where, f"{label} must be a mapping of names to values")
        return value

    def known_keys(
        self, value: Mapping[str, Any], where: tuple[str, ...], allowed: tuple[str, ...]
    ) -> None:
        for key in value:
            if key not in allowed:
                hint = close_matches(key, allowed)
                more = f"; did you mean {', '.join(hint)}?" if hint else ""
                label = ".".join((*where, key))
                raise self.fail((*where, key), f"unknown key {label!r}{more}")

    def registry(self, name: str, row: dict[str, Any]) -> RegistryEntry:
        where = ("registry",)
        self.known_keys(row, where, REGISTRY_KEYS)
        if not isinstance(row.get("sagemaker_step_type"), str):
            raise self.fail(where, "registry needs sagemaker_step_type (e.g. Processing)")
        fields = {
            "config_class": row.get("config_class") or f"{name}Config",
            "builder_step_name": row.get("builder_step_name") or f"{name}StepBuilder",
            "spec_type": row.get("spec_type") or name,
            "sagemaker_step_type": row["sagemaker_step_type"],
            "description": row.get("description") or "",
        }
        for key, value in fields.items():
            if not isinstance(value, str):
                raise self.fail((*where, key), f"registry.{key} must be text")
        line = _top_level_line(self.text, "registry")
        origin = Origin(workspace_id=self.workspace_id, path=self.path, line=line)
        return RegistryEntry(name=name, fields=fields, kind="define", origin=origin)


def _top_level_line(text: str, key: str) -> int | None:
    """The line of a top-level key, found without parsing again (it starts a line)."""
    at = 0 if text.startswith(f"{key}:") else text.find(f"\n{key}:") + 1
    return text.count("\n", 0, at) + 1 if at or text.startswith(f"{key}:") else None


def _line_of(text: str, where: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the deepest key (or list index) of ``where`` that the file has."""
    try:
        node = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for key in where:
        if isinstance(key, int):
            if not isinstance(node, yaml.SequenceNode) or key >= len(node.value):
                break
            node = node.value[key]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            break
        found = next((pair for pair in node.value if pair[0].value == key), None)
        if found is None:
            break
        line = found[0].start_mark.line + 1
        node = found[1]
    return line


def summarize_interface(text: str, *, path: Path) -> dict[str, Any]:
    """:func:`interface_summary` of an interface's text, read from its YAML node tree: the
    step, its node type, script, variants and registry row are checked here (the row by
    the same rules as :func:`parse_interface`); the rest of the file — contract paths,
    dependencies, outputs — only when the whole file is read. A third of the cost of
    reading it whole, which is what an index of thousands of interfaces pays.

    Raises:
        InterfaceFileError: not YAML, or what the summary holds is wrong, with the line.
    """
    try:
        root = yaml.compose(text, Loader=LOADER)  # nodes only: no value is constructed
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise InterfaceFileError(path, f"is not valid YAML: {exc.problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise InterfaceFileError(path, f"is not valid YAML: {exc}") from exc
    reader = NodeReader(text, path, "")
    top = reader.mapping(_nodes(root), ())
    reader.known_keys(top, (), (*TOP_KEYS, *METADATA_KEYS))
    for key in ("step_type", "node_type", "registry", "contract"):
        if key not in top:
            raise reader.fail((), f"has no {key!r}")
    name = _text(top["step_type"])
    if not name:
        raise reader.fail(("step_type",), "step_type must be the step's name")
    node_type = _text(top["node_type"])
    if node_type not in NODE_TYPES:
        allowed = ", ".join(NODE_TYPES)
        raise reader.fail(("node_type",), f"node_type {node_type!r} is not one of {allowed}")
    try:  # a fresh constructor per file: it remembers what it built
        row = yaml.constructor.SafeConstructor().construct_object(top["registry"], deep=True)
    except yaml.YAMLError as exc:  # a tag the safe constructor refuses
        raise reader.fail(("registry",), f"registry is not plain data: {exc}") from exc
    row = reader.mapping(row, ("registry",))
    registry = dict(reader.registry(name, row).fields)
    contract = reader.mapping(_nodes(top["contract"]), ("contract",))
    scriptless = "entry_point" in contract and _nodes(contract["entry_point"]) is None
    entry_point = None if scriptless else _text(contract.get("entry_point"))
    if entry_point is not None and (not entry_point.endswith(".py") or "/" in entry_point):
        message = f"contract.entry_point {entry_point!r} must be a Python file name like 'train.py'"
        raise reader.fail(("contract", "entry_point"), message)
    spec = reader.mapping(_nodes(top.get("spec")), ("spec",))
    variants = {}
    for job_type, node in reader.mapping(_nodes(top.get("variants")), ("variants",)).items():
        found = _text(reader.mapping(_nodes(node), ("variants", job_type)).get("step_type"))
        variants[job_type] = found or f"{name}_{job_type.capitalize()}"
    if variants:
        registry["job_types"] = list(variants)
    return {
        "step": name,
        "node_type": node_type,
        "entry_point": entry_point,
        "source_dir": source_dir_of(_scalar(contract.get("source_dir"))),
        "variants": variants,
        "registry": registry,
        "registry_line": _top_level_line(text, "registry"),
        "dependencies": len(_nodes(spec.get("dependencies")) or {}),
        "outputs": len(_nodes(spec.get("outputs")) or {}),
    }


def _nodes(node: Any) -> Any:
    """A mapping node as {key: value node}; a null or empty scalar as None; else the node."""
    if isinstance(node, yaml.MappingNode):
        if all(isinstance(key, yaml.ScalarNode) for key, _ in node.value):
            return {key.value: value for key, value in node.value}
        return node
    if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        return None
    return node


def _text(node: Any) -> str:
    """A scalar node's text ('' for anything else: the whole read reports what is wrong)."""
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _scalar(node: Any) -> Any:
    """A scalar node's value as YAML types it (``true`` a bool), else None."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    return yaml.constructor.SafeConstructor().construct_object(node)


def source_dir_of(value: Any) -> Any:
    """A contract's ``source_dir`` as a folder relative to the steps folder: ``true`` (the
    framework's "the job uploads its scripts folder and runs from it") is ``scripts``;
    ``false`` or none, no package folder; anything else as written (the model says what
    is wrong with it)."""
    if value is True:
        return "scripts"
    if value is False or value is None or value == "":
        return None
    return value
