"""Pipeline DAGs of step nodes: the Python API and the YAML file format.

A node is a pipeline node name (``TabularPreprocessing_training``: a step and an optional
job type); an edge says data flows from one node to another. The file format::

    name: churn
    nodes:
      - DataLoading_training
      - TabularPreprocessing_training
    edges:
      - [DataLoading_training, TabularPreprocessing_training]

An edge may also be written ``"A -> B"`` or ``{from: A, to: B}``. Every problem names the
file and line.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepkit.errors import DagError, DagFileError, UnknownStepError


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str


class PipelineDAG:
    """Nodes and edges, in insertion order; validated before anything runs."""

    def __init__(self, name: str = "pipeline") -> None:
        self.name = name
        self._nodes: dict[str, None] = {}
        self._edges: dict[tuple[str, str], None] = {}
        self._into: dict[str, list[str]] = {}  # node -> its predecessors, in edge order
        self._out_of: dict[str, list[str]] = {}  # node -> its successors
        self._lines: dict[str, int] = {}  # node/edge key -> line in the file it came from
        self.source: Path | None = None

    # -- building ------------------------------------------------------------------------------

    def add_node(self, node: str) -> PipelineDAG:
        """Add a node (adding it twice is an error: a DAG file lists each node once)."""
        if not node or not isinstance(node, str):
            raise DagError(f"Node names must be non-empty strings, not {node!r}.")
        if node in self._nodes:
            raise DagError(f"Node {node!r} is listed twice.")
        self._nodes[node] = None
        return self

    def add_edge(self, source: str, target: str) -> PipelineDAG:
        """Data flows from ``source`` to ``target``; both must be nodes."""
        for node in (source, target):
            if node not in self._nodes:
                raise UnknownStepError(node, self._nodes, what="node")
        if source == target:
            raise DagError(f"Edge {source} -> {target} points at itself.")
        if (source, target) not in self._edges:
            self._edges[(source, target)] = None
            self._into.setdefault(target, []).append(source)
            self._out_of.setdefault(source, []).append(target)
        return self

    # -- reading -------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        return list(self._nodes)

    @property
    def edges(self) -> list[Edge]:
        return [Edge(s, t) for s, t in self._edges]

    def predecessors(self, node: str) -> list[str]:
        return list(self._into.get(node, ()))

    def successors(self, node: str) -> list[str]:
        return list(self._out_of.get(node, ()))

    def descendants(self, node: str) -> set[str]:
        """Every node downstream of ``node``."""
        found: set[str] = set()
        stack = [node]
        while stack:
            for nxt in self.successors(stack.pop()):
                if nxt not in found:
                    found.add(nxt)
                    stack.append(nxt)
        return found

    def topological_order(self) -> list[str]:
        """Nodes so that every edge points forward; a cycle is a :class:`DagError` naming it."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for node in self._nodes:
            sorter.add(node, *self.predecessors(node))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            where = f"{self.source}: " if self.source else ""
            raise DagError(f"{where}the DAG has a cycle: {' -> '.join(cycle)}.") from exc

    def line_of(self, key: str) -> int | None:
        """The file line a node (or ``"A -> B"`` edge) was written on, if it came from a file."""
        return self._lines.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodes": self.nodes,
            "edges": [[e.source, e.target] for e in self.edges],
        }

    # -- the file ------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: Path | str) -> PipelineDAG:
        """Read a YAML (or JSON) DAG file; errors name the file and line."""
        return load_dag(Path(path))

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str]], *, name: str = "pipeline") -> PipelineDAG:
        dag = cls(name)
        for source, target in edges:
            for node in (source, target):
                if node not in dag._nodes:
                    dag.add_node(node)
            dag.add_edge(source, target)
        return dag


def load_dag(path: Path) -> PipelineDAG:
    """Parse a DAG file with line numbers (PyYAML's composer keeps every node's position)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DagFileError(path, f"cannot be read: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DagFileError(
            path, f"is not valid YAML: {getattr(exc, 'problem', exc)}", line=line
        ) from exc
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
    dag = PipelineDAG(str(name_node.value) if isinstance(name_node, yaml.ScalarNode) else path.stem)
    dag.source = path

    nodes_node = sections["nodes"][1]
    if not isinstance(nodes_node, yaml.SequenceNode):
        raise DagFileError(path, "'nodes' must be a list", line=nodes_node.start_mark.line + 1)
    for item in nodes_node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.ScalarNode) or not item.value:
            raise DagFileError(path, "each node must be a pipeline node name", line=line)
        if item.value in dag._nodes:
            raise DagFileError(path, f"node {item.value!r} is listed twice", line=line)
        dag.add_node(item.value)
        dag._lines[item.value] = line

    edges_node = sections.get("edges", (None, None))[1]
    if edges_node is not None and not isinstance(edges_node, yaml.SequenceNode | yaml.ScalarNode):
        raise DagFileError(path, "'edges' must be a list", line=edges_node.start_mark.line + 1)
    for item in edges_node.value if isinstance(edges_node, yaml.SequenceNode) else ():
        line = item.start_mark.line + 1
        source, target = _edge(path, item, line)
        for node in (source, target):
            if node not in dag._nodes:
                from stepkit.names import close_matches

                raise DagFileError(
                    path,
                    f"edge names {node!r}, which is not in 'nodes'",
                    line=line,
                    suggestions=close_matches(node, dag._nodes),
                )
        if source == target:
            raise DagFileError(path, f"edge {source} -> {target} points at itself", line=line)
        dag.add_edge(source, target)
        dag._lines[f"{source} -> {target}"] = line
    try:  # a cycle is reported now, before anything else looks at the DAG
        dag.topological_order()
    except DagError as exc:
        cycle = exc.__cause__.args[1] if isinstance(exc.__cause__, graphlib.CycleError) else []
        first = dag.line_of(f"{cycle[0]} -> {cycle[1]}") if len(cycle) > 1 else None
        raise DagFileError(path, f"the DAG has a cycle: {' -> '.join(cycle)}", line=first) from exc
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
