"""The one DAG model: nodes and the edges between them, checked with stdlib :mod:`graphlib`.

A pipeline's stages, and the step nodes of a DAG file (:mod:`stepkit.plan.dagfile`), are
both a :class:`DAG`; a node or edge read from a file keeps its :class:`Location` beside it,
so every error about it can name the file and line. An edge ``A -> B`` says ``B`` depends
on ``A`` (data flows from ``A`` to ``B``).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepkit.errors import DagError, PipelineCycleError, UnknownStageError, UnknownStepError


@dataclass(frozen=True, slots=True)
class Location:
    """Where a node or an edge was written."""

    file: Path
    line: int | None  # None: a JSON file the YAML composer could not place

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else str(self.file)


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str


class DAG:
    """Nodes and edges, in insertion order (which is also the order ties are broken in)."""

    def __init__(self, name: str = "pipeline", *, source: Path | None = None) -> None:
        self.name = name
        self.source = source  # the file it was read from, if any
        self.metadata: dict[str, Any] = {}  # free-form, from the file (shown by ``plan``)
        self._into: dict[str, list[str]] = {}  # node -> its predecessors, in edge order
        self._out_of: dict[str, list[str]] = {}  # node -> its successors
        self._edges: dict[tuple[str, str], None] = {}  # in the order they were added
        self._where: dict[str, Location] = {}  # node, or "A -> B" edge -> its location

    # -- building ------------------------------------------------------------------------------

    def add_node(self, node: str, *, at: Location | None = None) -> DAG:
        """Add a node (adding it twice is an error: a DAG lists each node once)."""
        if not node or not isinstance(node, str):
            raise DagError(f"Node names must be non-empty strings, not {node!r}.")
        if node in self._into:
            raise DagError(f"Node {node!r} is listed twice.")
        self._into[node] = []
        self._out_of[node] = []
        if at is not None:
            self._where[node] = at
        return self

    def add_edge(self, source: str, target: str, *, at: Location | None = None) -> DAG:
        """``target`` depends on ``source``; both must be nodes already."""
        for node in (source, target):
            if node not in self._into:
                raise UnknownStepError(node, self._into, what="node")
        if source == target:
            raise DagError(f"Edge {source} -> {target} points at itself.")
        if (source, target) not in self._edges:
            self._edges[(source, target)] = None
            self._into[target].append(source)
            self._out_of[source].append(target)
        if at is not None:
            self._where[f"{source} -> {target}"] = at
        return self

    @classmethod
    def from_dependencies(cls, name: str, graph: Mapping[str, Iterable[str]]) -> DAG:
        """A DAG from ``node -> the nodes it depends on`` (how a pipeline declares stages).

        Raises:
            UnknownStageError: a dependency names no node (with close names).
        """
        dag = cls(name)
        for node in graph:
            dag.add_node(node)
        for node, deps in graph.items():
            for dep in deps:
                if dep not in dag._into:
                    raise UnknownStageError(dep, graph, needed_by=node)
                dag.add_edge(dep, node)
        return dag

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str]], *, name: str = "pipeline") -> DAG:
        dag = cls(name)
        for source, target in edges:
            for node in (source, target):
                if node not in dag._into:
                    dag.add_node(node)
            dag.add_edge(source, target)
        return dag

    # -- reading -------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        return list(self._into)

    @property
    def edges(self) -> list[Edge]:
        return [Edge(source, target) for source, target in self._edges]

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """``node -> the nodes it depends on``: what a run records as its graph."""
        return {node: tuple(into) for node, into in self._into.items()}

    def predecessors(self, node: str) -> list[str]:
        return list(self._into.get(node, ()))

    def successors(self, node: str) -> list[str]:
        return list(self._out_of.get(node, ()))

    def descendants(self, *roots: str) -> set[str]:
        """Every node downstream of one of ``roots`` (the roots themselves excluded,
        unless one is downstream of another)."""
        found: set[str] = set()
        stack = list(roots)
        while stack:
            for child in self._out_of.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def sinks(self) -> list[str]:
        """Nodes nothing depends on (a pipeline's final stages), in node order."""
        return [node for node, out in self._out_of.items() if not out]

    def topological_order(self) -> list[str]:
        """Nodes so that every edge points forward.

        Raises:
            PipelineCycleError: the edges loop; names the loop, and the file and line of
                its first edge when the DAG came from a file.
        """
        try:
            return list(self._sorter().static_order())
        except graphlib.CycleError as exc:
            # graphlib gives [a, b, ..., a], each node a dependency of the next.
            cycle = list(exc.args[1])
            at = self._where.get(f"{cycle[0]} -> {cycle[1]}") if len(cycle) > 1 else None
            path = at.file if at is not None else self.source
            line = at.line if at is not None else None
            raise PipelineCycleError(self.name, cycle, path=path, line=line) from exc

    def ready_sorter(self) -> graphlib.TopologicalSorter[str]:
        """A prepared sorter for running the DAG: ``get_ready()`` / ``done()``."""
        sorter = self._sorter()
        sorter.prepare()
        return sorter

    def depths(self) -> dict[str, int]:
        """Longest path from a root to each node (0 for roots): the layers a drawing uses."""
        depth: dict[str, int] = {}
        for node in self.topological_order():
            depth[node] = max((depth[dep] + 1 for dep in self._into[node]), default=0)
        return depth

    def location(self, key: str) -> Location | None:
        """Where a node (or ``"A -> B"`` edge) was written, if it came from a file."""
        return self._where.get(key)

    def line_of(self, key: str) -> int | None:
        """The file line a node (or ``"A -> B"`` edge) was written on, if it came from a file."""
        at = self._where.get(key)
        return at.line if at is not None else None

    def __iter__(self) -> Iterator[str]:
        return iter(self._into)

    def __len__(self) -> int:
        return len(self._into)

    def __contains__(self, node: object) -> bool:
        return node in self._into

    def __repr__(self) -> str:
        return f"DAG({self.name!r}, nodes={len(self._into)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodes": self.nodes,
            "edges": [[e.source, e.target] for e in self.edges],
        }

    def _sorter(self) -> graphlib.TopologicalSorter[str]:
        # The one place graphlib is used: ``node -> predecessors`` is its own graph form.
        return graphlib.TopologicalSorter(self._into)


def depths(graph: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """:meth:`DAG.depths` of a recorded ``node -> dependencies`` graph (what reports draw)."""
    return DAG.from_dependencies("run", graph).depths()
