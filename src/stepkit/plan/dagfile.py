"""DAG files: a YAML (or JSON) list of step nodes and edges, read into the one DAG model.

A node is a pipeline node name (``TabularPreprocessing_training``: a step and an optional
job type); an edge says data flows from one node to another. The file format::

    name: churn
    nodes:
      - DataLoading_training
      - TabularPreprocessing_training
    edges:
      - [DataLoading_training, TabularPreprocessing_training]

An edge may also be written ``"A -> B"`` or ``{from: A, to: B}``. The result is a
:class:`stepkit.pipeline.dag.DAG` with each node's and edge's file and line kept beside it;
every problem names the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stepkit.errors import DagFileError
from stepkit.pipeline.dag import DAG, Edge, Location

#: The DAG of step nodes is the pipeline DAG; the name stays for code written against it.
PipelineDAG = DAG

__all__ = ["DAG", "Edge", "PipelineDAG", "load_dag", "yaml_error"]


def load_dag(path: Path) -> DAG:
    """Parse a DAG file with line numbers (PyYAML's composer keeps every node's position)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DagFileError(path, f"cannot be read: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from exc
    if not isinstance(root, yaml.MappingNode):
        raise DagFileError(path, "must be a mapping with 'nodes' and 'edges'", line=1)

    sections = {key.value: (key, value) for key, value in root.value}
    unknown = sorted(set(sections) - {"name", "nodes", "edges", "description"})
    if unknown:
        from stepkit.names import close_matches

        key_node = sections[unknown[0]][0]
        raise DagFileError(
            path,
            f"unknown key {unknown[0]!r}",
            line=key_node.start_mark.line + 1,
            suggestions=close_matches(unknown[0], ["name", "nodes", "edges", "description"]),
        )
    if "nodes" not in sections:
        raise DagFileError(path, "has no 'nodes' list", line=1)

    name_node = sections.get("name", (None, None))[1]
    name = str(name_node.value) if isinstance(name_node, yaml.ScalarNode) else path.stem
    dag = DAG(name, source=path)

    nodes_node = sections["nodes"][1]
    if not isinstance(nodes_node, yaml.SequenceNode):
        raise DagFileError(path, "'nodes' must be a list", line=nodes_node.start_mark.line + 1)
    for item in nodes_node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.ScalarNode) or not item.value:
            raise DagFileError(path, "each node must be a pipeline node name", line=line)
        if item.value in dag:
            raise DagFileError(path, f"node {item.value!r} is listed twice", line=line)
        dag.add_node(item.value, at=Location(path, line))

    edges_node = sections.get("edges", (None, None))[1]
    if edges_node is not None and not isinstance(edges_node, yaml.SequenceNode | yaml.ScalarNode):
        raise DagFileError(path, "'edges' must be a list", line=edges_node.start_mark.line + 1)
    for item in edges_node.value if isinstance(edges_node, yaml.SequenceNode) else ():
        line = item.start_mark.line + 1
        source, target = _edge(path, item, line)
        for node in (source, target):
            if node not in dag:
                from stepkit.names import close_matches

                raise DagFileError(
                    path,
                    f"edge names {node!r}, which is not in 'nodes'",
                    line=line,
                    suggestions=close_matches(node, dag.nodes),
                )
        if source == target:
            raise DagFileError(path, f"edge {source} -> {target} points at itself", line=line)
        dag.add_edge(source, target, at=Location(path, line))
    dag.topological_order()  # a cycle is reported now (with its file and line), before use
    return dag


def yaml_error(path: Path, exc: Exception) -> DagFileError:
    """A YAML parse error as a one-line :class:`DagFileError` with its line."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    return DagFileError(path, f"is not valid YAML: {getattr(exc, 'problem', exc)}", line=line)


def _edge(path: Path, item: Any, line: int) -> tuple[str, str]:
    import yaml

    if isinstance(item, yaml.ScalarNode) and "->" in item.value:
        source, _, target = item.value.partition("->")
        return source.strip(), target.strip()
    if isinstance(item, yaml.SequenceNode) and len(item.value) == 2:
        a, b = item.value
        if isinstance(a, yaml.ScalarNode) and isinstance(b, yaml.ScalarNode):
            return str(a.value), str(b.value)
    if isinstance(item, yaml.MappingNode):
        pairs = {k.value: v.value for k, v in item.value if isinstance(v, yaml.ScalarNode)}
        if set(pairs) == {"from", "to"}:
            return str(pairs["from"]), str(pairs["to"])
    raise DagFileError(
        path, "an edge is [source, target], 'source -> target' or {from:, to:}", line=line
    )
