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

import shutil
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.errors import DagFileError, UnknownStepError
from stepkit.names import split_node_name
from stepkit.testing.checks import Check, ScriptResult, Status
from stepkit.testing.lookup import Target, node_info, target_for_step
from stepkit.testing.script import Seed, TestOptions, Wired, run_test

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
    """Read a DAG file (:func:`stepkit.plan.dagfile.load_dag`) and find each node's step;
    every problem is a :class:`DagFileError` naming the file and line."""
    from stepkit.plan.dagfile import load_dag as read_dag

    dag = read_dag(path)
    targets: dict[str, Target] = {}
    for node in dag.nodes:
        try:
            info = node_info(catalog, node)
        except UnknownStepError as exc:
            raise DagFileError(
                path,
                f"no step named {node!r}",
                line=dag.line_of(node),
                suggestions=exc.suggestions,
            ) from exc
        targets[node] = target_for_step(catalog, info)
    upstream = {node: tuple(dag.predecessors(node)) for node in dag.nodes}
    return Dag(path, targets, upstream, tuple(dag.topological_order()))


def match_input(
    logical: str, dependency: DependencySpec | None, upstream: list[tuple[str, Target]]
) -> tuple[str, str] | None:
    """The (upstream node, output logical name) that feeds an input, or None.

    With a dependency spec, the planner's scorer decides (:mod:`stepkit.plan.wiring`); an
    input the spec does not describe is matched by an output's name or alias alone.
    """
    from stepkit.plan.wiring import Upstream, wire_node

    if dependency is not None:
        ups = [
            Upstream(
                node, split_node_name(node)[0], list(t.spec.outputs.values()) if t.spec else []
            )
            for node, t in upstream
        ]
        wires, _ = wire_node("", [dependency], ups)
        if wires:
            return wires[0].source, wires[0].output
    for node, target in upstream:
        if target.spec is not None:
            found = target.spec.get_output(logical)
            if found is not None:
                return node, found.logical_name
        elif target.contract is not None and logical in target.contract.expected_output_paths:
            return node, logical
    return None


def _wire(
    node: str, dag: Dag, results: Mapping[str, ScriptResult], seeded: Collection[str] = ()
) -> tuple[dict[str, Wired], DataFlowBreak | None]:
    target = dag.targets[node]
    upstream = [(u, dag.targets[u]) for u in dag.upstream[node]]
    if target.contract is None or not upstream:
        return {}, None
    dependencies = target.spec.dependencies if target.spec else {}
    wired: dict[str, Wired] = {}
    for logical in target.contract.expected_input_paths:
        if logical in seeded:
            continue  # given from local data (--data NODE.INPUT=PATH)
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


def run_pipeline(
    dag: Dag, options: TestOptions, *, seeds: Mapping[str, Mapping[str, Path]] | None = None
) -> PipelineResult:
    """Run every node in topological order; stop a branch at its first failure. ``seeds``
    (node -> input -> a local file or folder) give inputs instead of upstream outputs."""
    seeds = seeds or {}
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
        given = {k: Seed(path, "data") for k, path in seeds.get(node, {}).items()}
        wired, broken = _wire(node, dag, results, given)
        if broken is not None:
            first_break = first_break or broken
            check = Check("inputs", Status.FAIL, f"data-flow break: {broken}")
            results[node] = ScriptResult(node, Status.FAIL, (check,), script=target.script)
            blocked.add(node)
            continue
        results[node] = run_test(target, options, wired=wired, seeds=given, workdir=root / node)
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
