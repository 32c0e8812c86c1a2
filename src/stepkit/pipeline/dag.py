"""The stage graph: validated with stdlib :mod:`graphlib` before anything runs."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from stepkit.errors import PipelineCycleError, UnknownStageError


def validate_graph(pipeline: str, graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Check every dependency exists and there is no cycle; returns a topological order.

    Raises:
        UnknownStageError: a dependency names no stage (with close names).
        PipelineCycleError: the dependencies loop; the error names the loop.
    """
    for name, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                raise UnknownStageError(dep, graph, needed_by=name)
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        # graphlib gives [a, b, ..., a], each node a dependency of the next: execution order.
        cycle = list(exc.args[1])
        raise PipelineCycleError(pipeline, cycle) from exc


def descendants(graph: Mapping[str, Iterable[str]], roots: Iterable[str]) -> set[str]:
    """Every stage that depends, directly or not, on one of ``roots``."""
    children: dict[str, list[str]] = {}
    for name, deps in graph.items():
        for dep in deps:
            children.setdefault(dep, []).append(name)
    found: set[str] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def sinks(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Stages nothing depends on (the pipeline's final stages), in graph order."""
    used = {dep for deps in graph.values() for dep in deps}
    return [name for name in graph if name not in used]


def depths(graph: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Longest path from a root to each stage (0 for roots): the layers a drawing uses."""
    depth: dict[str, int] = {}
    for name in graphlib.TopologicalSorter(graph).static_order():
        depth[name] = max((depth[dep] + 1 for dep in graph.get(name, ())), default=0)
    return depth
