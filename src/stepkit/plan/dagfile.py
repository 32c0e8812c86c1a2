"""DAG files: YAML or JSON lists of step nodes and edges, read into the one DAG model.

A node is a pipeline node name (``TabularPreprocessing_training``: a step and an optional
job type); an edge says data flows from one node to another. The YAML form::

    name: churn
    description: the churn model, trained and evaluated
    nodes:
      - DataLoading_training
      - TabularPreprocessing_training
    edges:
      - [DataLoading_training, TabularPreprocessing_training]

An edge may also be written ``"A -> B"`` or ``{from: A, to: B}``. The JSON form
(``*.dag.json``, the interface-first layout's) nests the graph under ``dag`` beside a
free-form ``metadata`` object, whose ``name`` names the DAG::

    {"dag": {"nodes": ["A", "B"], "edges": [["A", "B"]]},
     "metadata": {"name": "xgboost_simple", "framework": "xgboost"}}

Both load into a :class:`stepkit.pipeline.dag.DAG` with each node's and edge's file and
line kept beside it, and its metadata (``description`` in YAML); every problem names the
file and line, and for JSON the location in the document (``dag.edges[1]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stepkit.errors import DagFileError
from stepkit.pipeline.dag import DAG, Edge, Location

#: The DAG of step nodes is the pipeline DAG; the name stays for code written against it.
PipelineDAG = DAG

__all__ = ["DAG", "Edge", "PipelineDAG", "load_dag", "yaml_error"]


#: A value's place in the document: keys and list indexes from the root.
Where = tuple[str | int, ...]

_YAML_KEYS = ("name", "description", "nodes", "edges")
_JSON_KEYS = ("dag", "metadata")


def load_dag(path: Path) -> DAG:
    """Read a DAG file: JSON when its name ends in ``.json``, else YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DagFileError(path, f"cannot be read: {exc}") from exc
    if path.suffix == ".json":
        return _from_json(path, text)
    return _from_yaml(path, text)


def _from_yaml(path: Path, text: str) -> DAG:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()  # composed once: values and every line from one parse
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from exc
    finally:
        loader.dispose()
    file = _File(path, _lines(node), json=False)
    if not isinstance(document, dict):
        raise file.error((), "must be a mapping with 'nodes' and 'edges'")
    file.check_keys((), document, _YAML_KEYS)
    name = document.get("name")
    metadata = {"description": document["description"]} if "description" in document else {}
    return _build(file, (), document, name=name, metadata=metadata)


def _from_json(path: Path, text: str) -> DAG:
    import json

    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"is not valid JSON: {exc.msg} (column {exc.colno})"
        raise DagFileError(path, message, line=exc.lineno) from exc
    file = _File(path, _json_lines(text), json=True)
    if not isinstance(document, dict) or not isinstance(document.get("dag"), dict):
        raise file.error((), "must be an object with a 'dag' object of 'nodes' and 'edges'")
    file.check_keys((), document, _JSON_KEYS)
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict):
        raise file.error(("metadata",), "'metadata' must be an object")
    file.check_keys(("dag",), document["dag"], ("nodes", "edges"))
    return _build(file, ("dag",), document["dag"], name=metadata.get("name"), metadata=metadata)


def _build(
    file: _File, at: Where, graph: dict[str, Any], *, name: Any, metadata: dict[str, Any]
) -> DAG:
    """The DAG of a document's ``nodes`` and ``edges`` (found at ``at``): one walker for both
    formats, every error naming where it is."""
    path = file.path
    if "nodes" not in graph:
        raise file.error(at, "has no 'nodes' list")
    dag = DAG(str(name) if isinstance(name, str | int) else path.stem, source=path)
    dag.metadata = dict(metadata)
    nodes = graph["nodes"]
    if not isinstance(nodes, list):
        raise file.error((*at, "nodes"), "'nodes' must be a list")
    for index, node in enumerate(nodes):
        where = (*at, "nodes", index)
        if not isinstance(node, str) or not node:
            raise file.error(where, "each node must be a pipeline node name")
        if node in dag:
            raise file.error(where, f"node {node!r} is listed twice")
        dag.add_node(node, at=Location(path, file.line(where)))
    edges = graph.get("edges") or []
    if not isinstance(edges, list):
        raise file.error((*at, "edges"), "'edges' must be a list")
    for index, edge in enumerate(edges):
        where = (*at, "edges", index)
        source, target = _edge(file, where, edge)
        for node in (source, target):
            if node not in dag:
                from stepkit.names import close_matches

                raise file.error(
                    where,
                    f"edge names {node!r}, which is not in 'nodes'",
                    suggestions=close_matches(node, dag.nodes),
                )
        if source == target:
            raise file.error(where, f"edge {source} -> {target} points at itself")
        dag.add_edge(source, target, at=Location(path, file.line(where)))
    dag.topological_order()  # a cycle is reported now (with its file and line), before use
    return dag


def _edge(file: _File, where: Where, item: Any) -> tuple[str, str]:
    if isinstance(item, str) and "->" in item:
        source, _, target = item.partition("->")
        return source.strip(), target.strip()
    if isinstance(item, list) and len(item) == 2 and all(isinstance(n, str) for n in item):
        return item[0], item[1]
    if isinstance(item, dict) and set(item) == {"from", "to"}:
        return str(item["from"]), str(item["to"])
    raise file.error(where, "an edge is [source, target], 'source -> target' or {from:, to:}")


class _File:
    """A DAG file being read: its path, the line of each place, how errors name them."""

    def __init__(self, path: Path, lines: dict[Where, int], *, json: bool) -> None:
        self.path = path
        self.lines = lines
        self.json = json

    def line(self, where: Where) -> int | None:
        """The line of ``where``, or of the nearest place above it that has one."""
        for end in range(len(where), -1, -1):
            if where[:end] in self.lines:
                return self.lines[where[:end]]
        return None

    def error(self, where: Where, message: str, *, suggestions: Sequence[str] = ()) -> DagFileError:
        if self.json and where:
            message = f"{_pointer(where)}: {message}"
        line = self.line(where) if where or not self.json else None
        return DagFileError(self.path, message, line=line or None, suggestions=suggestions)

    def check_keys(self, where: Where, mapping: dict[str, Any], known: tuple[str, ...]) -> None:
        unknown = [key for key in mapping if key not in known]
        if unknown:
            from stepkit.names import close_matches

            key = str(unknown[0])
            raise self.error(
                (*where, key), f"unknown key {key!r}", suggestions=close_matches(key, known)
            )


def _pointer(where: Where) -> str:
    """``("dag", "edges", 1)`` as ``dag.edges[1]``."""
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _lines(node: Any, where: Where = ()) -> dict[Where, int]:
    """The 1-based line of every place of a composed YAML document (a key's own line for a
    mapping's entries)."""
    import yaml

    if node is None:
        return {}
    lines = {where: node.start_mark.line + 1}
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_lines(item, (*where, index)))
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(_lines(value, (*where, key.value)))
            lines[(*where, key.value)] = key.start_mark.line + 1
    return lines


def _json_lines(text: str) -> dict[Where, int]:
    """Lines of a JSON document's places, through the YAML composer (JSON is YAML's flow
    style); a document it cannot compose (tabs before a token, say) has none, and errors
    name the place in the document alone."""
    import yaml

    try:
        return _lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return {}


def yaml_error(path: Path, exc: Exception) -> DagFileError:
    """A YAML parse error as a one-line :class:`DagFileError` with its line."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    return DagFileError(path, f"is not valid YAML: {getattr(exc, 'problem', exc)}", line=line)
