"""Planning: every node of a DAG resolved through the catalog, configured, and wired.

Nothing runs until the whole plan holds: unknown nodes (with close names), incomplete
steps, steps that cannot run locally, config errors and unsatisfied or ambiguous inputs
are all collected first and reported together, each naming its node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.catalog.models import contract_of, file_facts, spec_of, unreadable
from stepkit.errors import PlanError, PlanInvalidError, StepkitError
from stepkit.plan.config import (
    PipelineConfig,
    check_config_nodes,
    import_class,
    node_config,
    script_environment,
)
from stepkit.plan.dagfile import PipelineDAG
from stepkit.plan.wiring import Upstream, Wire, WiringIssue, wire_node

if TYPE_CHECKING:
    from stepkit.catalog import StepCatalog
    from stepkit.catalog.records import StepInfo
    from stepkit.components import ScriptContract, StepConfig, StepSpecification


@dataclass(frozen=True, slots=True)
class NodePlan:
    """How one node runs: its files, validated config, environment, inputs and outputs."""

    node: str
    step: str
    job_type: str | None
    workspace_id: str
    how: str  # "script" (a subprocess calls main) | "builder" (the builder's run(context))
    files: Mapping[str, Path | None]  # script, contract, spec, config, builder
    contract: ScriptContract | None
    spec: StepSpecification | None
    config: StepConfig | None
    builder_class: str | None
    environment: Mapping[str, str]
    arguments: Mapping[str, str]
    inputs: tuple[Wire, ...]
    outputs: tuple[str, ...]
    depends_on: tuple[str, ...]

    def config_values(self) -> dict[str, Any]:
        """The resolved config as plain JSON data (what the cache key hashes)."""
        if self.config is None:
            return {}
        return self.config.model_dump(mode="json", exclude={"workspace_id"})


@dataclass(slots=True)
class Plan:
    """A DAG whose every node is resolved, in an order where inputs come first."""

    dag: PipelineDAG
    config_source: Path | None = None
    nodes: dict[str, NodePlan] = field(default_factory=dict)
    notes: list[WiringIssue] = field(default_factory=list)  # optional inputs left unwired

    def wiring_rows(self) -> list[dict[str, Any]]:
        """One row per wired input: what ``stepkit plan`` prints."""
        rows = []
        for plan in self.nodes.values():
            for wire in plan.inputs:
                rows.append(
                    {
                        "node": plan.node,
                        "input": wire.dependency,
                        "from": f"{wire.source}.{wire.output}",
                        "score": wire.score,
                        "why": ", ".join(wire.reasons),
                    }
                )
        return rows


def plan_pipeline(
    catalog: StepCatalog,
    dag: PipelineDAG,
    config: PipelineConfig | None = None,
    *,
    seeded: frozenset[str] = frozenset(),
) -> Plan:
    """Resolve, configure and wire every node; raise :class:`PlanInvalidError` listing every
    problem when any node cannot run. An input named in ``seeded`` (``NODE.INPUT``) is
    given from local data, so it is not wired."""
    config = config or PipelineConfig()
    problems: list[str] = []
    order = dag.topological_order()
    try:
        check_config_nodes(config, order)
    except PlanError as exc:
        problems.append(str(exc))

    plan = Plan(dag, config_source=config.source)
    resolved: dict[str, tuple[StepInfo, StepSpecification | None]] = {}
    for node in order:
        try:
            info = catalog.get_step_info(node)
        except StepkitError as exc:
            problems.append(f"{node}: {exc}")
            continue
        resolved[node] = (info, spec_of(catalog, node))

    for node in order:
        if node not in resolved:
            continue
        info, spec = resolved[node]
        try:
            node_plan = _plan_node(
                catalog, dag, config, node, info, spec, resolved, plan, seeded=seeded
            )
        except PlanError as exc:
            problems.append(str(exc))
            continue
        plan.nodes[node] = node_plan
    if problems:
        raise PlanInvalidError(problems)
    return plan


def _plan_node(
    catalog: StepCatalog,
    dag: PipelineDAG,
    config: PipelineConfig,
    node: str,
    info: StepInfo,
    spec: StepSpecification | None,
    resolved: Mapping[str, tuple[StepInfo, StepSpecification | None]],
    plan: Plan,
    *,
    seeded: frozenset[str] = frozenset(),
) -> NodePlan:
    components = info.components
    if not info.registered or info.definition is None:
        raise PlanError(node, f"step {info.name} has no registry entry, so it has no config class")
    if info.missing:
        raise PlanError(
            node,
            f"{info.definition.sagemaker_step_type} step {info.name} is incomplete: "
            f"no {', '.join(info.missing)}",
        )
    if info.broken:
        component, why = next(iter(info.broken.items()))
        raise PlanError(node, f"step {info.name} is incomplete: its {component} {why}")
    builder_file = components["builder"].path if "builder" in components else None
    builder_class = info.definition.builder_step_name
    script_file = components["script"].path if "script" in components else None
    contract = contract_of(catalog, node) if "contract" in components else None
    # A step with a script runs it; only a step without one runs through its builder.
    if script_file is not None and contract is not None:
        how = "script"
    elif _builder_has_run(catalog, builder_file, builder_class):
        how = "builder"
    else:
        has = "a script but no contract" if script_file is not None else "no script"
        raise PlanError(
            node,
            f"step {info.name} cannot run locally: it has {has}, and its builder "
            f"{builder_class} defines no run(context)",
        )

    if how == "script" and (unread := unreadable(catalog, components["script"].location)):
        raise PlanError(node, f"step {info.name} is incomplete: its script {unread}")
    config_file = components["config"].path if "config" in components else None
    if config_file is None:
        raise PlanError(
            node, f"step {info.name} has no config file defining {info.definition.config_class}"
        )
    config_class = import_class(config_file, info.definition.config_class, node=node)
    step_config = node_config(config_class, node=node, job_type=info.job_type, config=config)

    environment: dict[str, str] = {}
    arguments: dict[str, str] = {}
    if how == "script" and contract is not None:
        environment, arguments = script_environment(contract, step_config, node=node)
        outputs = tuple(contract.expected_output_paths)
        if spec is not None:
            unmapped = [o for o in spec.outputs if o not in contract.expected_output_paths]
            if unmapped:
                raise PlanError(
                    node,
                    f"spec output {unmapped[0]!r} has no path in the contract "
                    f"(contract outputs: {', '.join(contract.expected_output_paths) or 'none'})",
                )
    else:
        outputs = tuple(spec.outputs) if spec is not None else ()

    upstream = []
    for parent in dag.predecessors(node):
        if parent not in resolved:
            continue
        parent_info, parent_spec = resolved[parent]
        upstream.append(
            Upstream(
                parent, parent_info.name, list(parent_spec.outputs.values()) if parent_spec else []
            )
        )
    dependencies = [
        d
        for d in (spec.dependencies.values() if spec is not None else ())
        if f"{node}.{d.logical_name}" not in seeded
    ]
    wires, issues = wire_node(node, dependencies, upstream)
    blocking = [i for i in issues if i.required or i.kind == "ambiguous"]
    if blocking:
        raise PlanError(node, "; ".join(str(i).split(": ", 1)[1] for i in blocking))
    plan.notes.extend(issues)
    if how == "script" and contract is not None:
        unmapped_inputs = [
            w.dependency for w in wires if w.dependency not in contract.expected_input_paths
        ]
        if unmapped_inputs:
            raise PlanError(node, f"input {unmapped_inputs[0]!r} has no path in the contract")
    spec_file = components["spec"].path if "spec" in components else None
    return NodePlan(
        node=node,
        step=info.name,
        job_type=info.job_type,
        workspace_id=info.workspace_id,
        how=how,
        files={
            "script": script_file if how == "script" else None,
            "contract": components["contract"].path if "contract" in components else None,
            "spec": spec_file,
            "config": config_file,
            "builder": builder_file if how == "builder" else None,
        },
        contract=contract,
        spec=spec,
        config=step_config,
        builder_class=builder_class if how == "builder" else None,
        environment=environment,
        arguments=arguments,
        inputs=tuple(wires),
        outputs=outputs,
        depends_on=tuple(dag.predecessors(node)),
    )


def _builder_has_run(catalog: StepCatalog, builder_file: Path | None, builder_class: str) -> bool:
    if builder_file is None:
        return False
    facts = file_facts(catalog, builder_file) or {}
    return any(
        c.get("name") == builder_class and c.get("has_run") for c in facts.get("classes", ())
    )
