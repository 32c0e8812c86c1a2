"""``test pipeline``: run a DAG's scripts in order, each on what its upstream steps wrote.

A DAG file is YAML with ``nodes`` (pipeline node names like ``TabularPreprocessing_training``)
and ``edges`` (``[from, to]`` pairs). An input of a step is wired to an upstream output
through the specs: first an output whose logical name or alias is the input's name, then
an output of an upstream step the dependency lists as a compatible source (preferring the
same kind of data, then shared keywords). The first *data-flow break* — a required input no
upstream provides, or an upstream output that is missing or empty — is reported, the step
fails, its descendants are skipped and the rest of the DAG goes on.
"""

from __future__ import annotations

import graphlib
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.errors import DagFileError, UnknownStepError
from stepkit.names import split_node_name
from stepkit.testing.checks import Check, ScriptResult, Status
from stepkit.testing.lookup import Target, node_info, target_for_step
from stepkit.testing.runner import TestOptions, Wired, run_test

if TYPE_CHECKING:
    from stepkit.catalog import StepCatalog
    from stepkit.components import DependencySpec


@dataclass(frozen=True, slots=True)
class Dag:
    file: Path
    targets: Mapping[str, Target]  # node -> target, in file order
    upstream: Mapping[str, tuple[str, ...]]  # node -> its direct upstream nodes, edge order
    order: tuple[str, ...]  # topological


@dataclass(frozen=True, slots=True)
class DataFlowBreak:
    node: str
    input: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node}: input {self.input!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PipelineResult:
    dag_file: Path
    status: Status
    steps: tuple[ScriptResult, ...]  # in the order they ran
    first_break: DataFlowBreak | None
    temp_dir: Path | None  # kept when something did not pass, or with keep

    @property
    def ok(self) -> bool:
        return self.status is Status.PASS

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_file": str(self.dag_file),
            "status": self.status.value,
            "first_break": (
                {"node": b.node, "input": b.input, "reason": b.reason}
                if (b := self.first_break)
                else None
            ),
            "steps": [s.to_json() for s in self.steps],
            "temp_dir": str(self.temp_dir) if self.temp_dir else None,
        }


def load_dag(path: Path, catalog: StepCatalog) -> Dag:
    """Read and check a DAG file; every problem is a :class:`DagFileError`."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DagFileError(path, f"cannot be read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", exc)
        raise DagFileError(path, f"is not valid YAML ({problem})", line=line) from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise DagFileError(path, "needs a list under 'nodes' (and pairs under 'edges')")
    unknown_keys = sorted(set(data) - {"nodes", "edges"})
    if unknown_keys:
        raise DagFileError(path, f"unknown key {unknown_keys[0]!r}", suggestions=["nodes", "edges"])
    nodes: list[str] = []
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, str) or not node:
            raise DagFileError(path, f"nodes[{i}] must be a node name, got {node!r}")
        if node in nodes:
            raise DagFileError(path, f"nodes[{i}]: {node!r} is listed twice")
        nodes.append(node)
    upstream: dict[str, list[str]] = {node: [] for node in nodes}
    for i, edge in enumerate(data.get("edges") or []):
        if not (isinstance(edge, list) and len(edge) == 2):
            raise DagFileError(path, f"edges[{i}] must be a [from, to] pair, got {edge!r}")
        for end in edge:
            if end not in upstream:
                raise DagFileError(
                    path,
                    f"edges[{i}] names {end!r}, which is not a node",
                    suggestions=_close(end, nodes),
                )
        upstream[edge[1]].append(edge[0])
    try:
        order = tuple(graphlib.TopologicalSorter(upstream).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise DagFileError(path, f"has a cycle: {cycle}") from exc
    targets: dict[str, Target] = {}
    for i, node in enumerate(nodes):
        try:
            info = node_info(catalog, node)
        except UnknownStepError as exc:
            raise DagFileError(
                path, f"nodes[{i}]: no step named {node!r}", suggestions=exc.suggestions
            ) from exc
        targets[node] = target_for_step(catalog, info)
    return Dag(path, targets, {n: tuple(u) for n, u in upstream.items()}, order)


def _close(word: str, candidates: list[str]) -> list[str]:
    from stepkit.names import close_matches

    return close_matches(word, candidates)


def _score(dependency: DependencySpec | None, output: Any) -> tuple[int, int]:
    """How well an upstream output fits a dependency: same kind of data, shared words."""
    if dependency is None:
        return (0, 0)
    same_type = int(output.output_type == dependency.dependency_type)
    words = {output.logical_name.lower(), *(a.lower() for a in output.aliases)}
    return (same_type, len(words & {k.lower() for k in dependency.semantic_keywords}))


def match_input(
    logical: str, dependency: DependencySpec | None, upstream: list[tuple[str, Target]]
) -> tuple[str, str] | None:
    """The (upstream node, output logical name) that feeds an input, or None."""
    for node, target in upstream:  # 1. the output's logical name or an alias is the input's
        if target.spec is not None:
            found = target.spec.get_output(logical)
            if found is not None:
                return node, found.logical_name
        elif target.contract is not None and logical in target.contract.expected_output_paths:
            return node, logical
    if dependency is None:
        return None
    best: tuple[tuple[int, int], str, str] | None = None
    for node, target in upstream:  # 2. a compatible source: the best-fitting output
        base = split_node_name(node)[0]
        if base not in dependency.compatible_sources or target.spec is None:
            continue
        for output in target.spec.outputs.values():
            score = _score(dependency, output)
            if best is None or score > best[0]:
                best = (score, node, output.logical_name)
    return (best[1], best[2]) if best else None


def _wire(
    node: str, dag: Dag, results: Mapping[str, ScriptResult]
) -> tuple[dict[str, Wired], DataFlowBreak | None]:
    target = dag.targets[node]
    upstream = [(u, dag.targets[u]) for u in dag.upstream[node]]
    if target.contract is None or not upstream:
        return {}, None
    dependencies = target.spec.dependencies if target.spec else {}
    wired: dict[str, Wired] = {}
    for logical in target.contract.expected_input_paths:
        dependency = dependencies.get(logical)
        match = match_input(logical, dependency, upstream)
        if match is None:
            if dependency is not None and dependency.required:
                names = ", ".join(dag.upstream[node])
                return wired, DataFlowBreak(
                    node, logical, f"required, but no upstream step provides it (upstream: {names})"
                )
            continue
        up, output = match
        source = f"{up}.{output}"
        path = results[up].outputs.get(output)
        if path is None:
            why = (
                f"{up} has no script, so nothing wrote {source}"
                if dag.targets[up].script is None
                else f"{up}'s contract maps no path for its output {output!r}"
            )
            return wired, DataFlowBreak(node, logical, why)
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return wired, DataFlowBreak(node, logical, f"{source} is missing or empty ({path})")
        wired[logical] = Wired(path, source)
    return wired, None


def run_pipeline(dag: Dag, options: TestOptions) -> PipelineResult:
    """Run every node in topological order; stop a branch at its first failure."""
    root = Path(
        tempfile.mkdtemp(prefix=f"stepkit-pipeline-{dag.file.stem}-", dir=options.temp_root)
    )
    results: dict[str, ScriptResult] = {}
    first_break: DataFlowBreak | None = None
    blocked: set[str] = set()  # failed, or skipped because an upstream failed
    for node in dag.order:
        target = dag.targets[node]
        failed = [u for u in dag.upstream[node] if u in blocked]
        if failed:
            why = f"upstream {', '.join(failed)} did not pass"
            results[node] = ScriptResult(node, Status.SKIP, (Check("upstream", Status.SKIP, why),))
            blocked.add(node)
            continue
        if target.script is None:
            why = target.no_script_reason or "no script"
            results[node] = ScriptResult(node, Status.SKIP, (Check("script", Status.SKIP, why),))
            continue
        wired, broken = _wire(node, dag, results)
        if broken is not None:
            first_break = first_break or broken
            check = Check("inputs", Status.FAIL, f"data-flow break: {broken}")
            results[node] = ScriptResult(node, Status.FAIL, (check,), script=target.script)
            blocked.add(node)
            continue
        results[node] = run_test(target, options, wired=wired, workdir=root / node)
        if results[node].status is not Status.PASS:
            blocked.add(node)
    statuses = {r.status for r in results.values()}
    status = next((s for s in (Status.ERROR, Status.FAIL) if s in statuses), Status.PASS)
    kept: Path | None = root
    if status is Status.PASS and not options.keep:
        shutil.rmtree(root, ignore_errors=True)
        kept = None
    steps = tuple(results[n] for n in dag.order)
    return PipelineResult(dag.file, status, steps, first_break, kept)
