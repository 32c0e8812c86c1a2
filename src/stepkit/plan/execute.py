"""A plan becomes a pipeline of node stages, and runs with durable state and caching.

Before anything starts, the runner walks the plan in order and looks every node up in the
cache whose inputs are already known (a source node, or one fed only by hits): a hit
becomes a stage that just hands back the recorded artifacts, so a fully cached re-run
starts no process at all. Every other node is a :class:`~stepkit.plan.node.NodeTask`,
run isolated (a fresh child process by default) and looked up again there, now that its
inputs' digests are known.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.errors import PlanError
from stepkit.pipeline.dask_executor import dask_executor, is_dask, lost_worker_policy
from stepkit.plan.cache import CACHE_FILE as CACHE_FILE
from stepkit.plan.cache_backends import cache_location
from stepkit.plan.node import NODE_INFO, CachedNode, NodeTask, lookup

if TYPE_CHECKING:
    from stepkit.pipeline.pipeline import Pipeline
    from stepkit.pipeline.results import RunResult
    from stepkit.pipeline.stage import Mode, RetryPolicy
    from stepkit.plan.planner import Plan
    from stepkit.project import Project
    from stepkit.state.base import StateRepository

#: "local" | "process" | "dask-local" | "dask://HOST:PORT" (checked by ``check_executor``)
ExecutorName = str


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a plan: ``no_cache`` runs every node, ``refresh`` the nodes named."""

    executor: ExecutorName = "local"
    max_workers: int | None = None
    no_cache: bool = False
    refresh: frozenset[str] = frozenset()
    timeout: float | None = None
    fail_fast: bool = False
    keep_temp: bool = False

    def __post_init__(self) -> None:
        from stepkit.pipeline.dask_executor import check_executor

        check_executor(self.executor)


def node_tasks(plan: Plan, project: Project, options: RunOptions) -> dict[str, NodeTask]:
    """One :class:`NodeTask` per node of the plan."""
    from stepkit.artifacts.backends import catalog_location

    unknown = sorted(options.refresh - set(plan.nodes))
    if unknown:
        from stepkit.names import close_matches

        raise PlanError(
            unknown[0],
            "--refresh names no node of the DAG.",
            suggestions=close_matches(unknown[0], plan.nodes),
        )
    cache_path = cache_location(project)
    catalog = catalog_location(project)
    tasks: dict[str, NodeTask] = {}
    for name, node in plan.nodes.items():
        tasks[name] = NodeTask(
            node=name,
            how=node.how,
            files={role: str(p) if p else None for role, p in node.files.items()},
            config_class=type(node.config).__name__ if node.config is not None else "",
            builder_class=node.builder_class,
            config=node.config_values(),
            environment=dict(node.environment),
            arguments=dict(node.arguments),
            inputs={w.dependency: (w.source, w.output) for w in node.inputs},
            outputs=node.outputs,
            store_root=str(project.artifacts_root),
            catalog_path=catalog,
            cache_path=cache_path,
            lookup_cache=not (options.no_cache or name in options.refresh),
        )
    return tasks


def prefetch_hits(plan: Plan, tasks: Mapping[str, NodeTask]) -> dict[str, dict[str, Any]]:
    """Nodes whose cache entry can be found before running anything, with their outputs."""
    hits: dict[str, dict[str, Any]] = {}
    for name in plan.nodes:
        task = tasks[name]
        if not task.lookup_cache:
            continue
        digests: dict[str, str] = {}
        for dependency, (upstream, output) in task.inputs.items():
            if upstream not in hits:
                break
            digests[dependency] = hits[upstream][output]["digest"]
        else:
            found = lookup(task.cache_path, task.key(digests).digest, store_root=task.store_root)
            if found is not None:
                hits[name] = found
    return hits


def build_pipeline(plan: Plan, project: Project, options: RunOptions) -> Pipeline:
    """The plan as an orchestrator pipeline (see the module docstring)."""
    from stepkit.pipeline.pipeline import Pipeline

    tasks = node_tasks(plan, project, options)
    hits = prefetch_hits(plan, tasks)
    pipeline = Pipeline(plan.dag.name, source=dag_source(plan))
    mode: Mode = "subprocess" if options.executor == "local" else "distributed"
    retry: RetryPolicy | None = None
    if is_dask(options.executor):
        # A node is retried when its worker dies under it, never because its step failed:
        # a step's own error is deterministic, and the cache makes re-running cheap anyway.
        retry = lost_worker_policy()
    for name, node in plan.nodes.items():
        if name in hits:
            pipeline.add(name, CachedNode(hits[name]), depends_on=node.depends_on, mode="direct")
        else:
            pipeline.add(
                name,
                tasks[name],
                depends_on=node.depends_on,
                mode=mode,
                timeout=options.timeout,
                retry=retry,
            )
    return pipeline


DAG_SOURCE = "stepkit-dag:"


def dag_source(plan: Plan) -> str | None:
    """What a run records so ``stepkit runs resume`` can plan it again: the DAG and config files."""
    if plan.dag.source is None:
        return None
    config = plan.config_source.absolute() if plan.config_source else ""
    return f"{DAG_SOURCE}{plan.dag.source.absolute()}::{config}"


def plan_from_source(project: Project, source: str) -> Plan:
    """The plan a recorded ``stepkit-dag:`` source names, made again from its files."""
    from stepkit.catalog import StepCatalog
    from stepkit.plan.config import load_pipeline_config
    from stepkit.plan.dagfile import load_dag
    from stepkit.plan.planner import plan_pipeline

    dag_file, _, config_file = source.removeprefix(DAG_SOURCE).partition("::")
    config = load_pipeline_config(Path(config_file) if config_file else None)
    return plan_pipeline(StepCatalog(project), load_dag(Path(dag_file)), config)


def run_plan(
    plan: Plan,
    project: Project,
    state: StateRepository,
    options: RunOptions,
    *,
    resume: str | None = None,
    cancel_event: threading.Event | None = None,
) -> RunResult:
    """Run (or resume) the plan; the caller owns ``state``."""
    pipeline = build_pipeline(plan, project, options)
    if is_dask(options.executor):
        with dask_executor(options.executor, workers=options.max_workers) as executor:
            return _run(pipeline, plan, state, options, executor, resume, cancel_event)
    pool: Executor | None = None
    if options.executor == "process":
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=options.max_workers)
    try:
        return _run(pipeline, plan, state, options, pool, resume, cancel_event)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _run(
    pipeline: Pipeline,
    plan: Plan,
    state: StateRepository,
    options: RunOptions,
    executor: Executor | None,
    resume: str | None,
    cancel_event: threading.Event | None,
) -> RunResult:
    """Run or resume ``pipeline`` on ``executor`` (None: the runner's own pool)."""
    common: dict[str, Any] = {
        "state": state,
        "executor": executor,
        "max_workers": options.max_workers,
        "fail_fast": options.fail_fast,
        "keep_temp": options.keep_temp,
        "cancel_event": cancel_event,
    }
    if resume is not None:
        return pipeline.resume(resume, **common)
    return pipeline.run(inputs={"dag": str(plan.dag.source or plan.dag.name)}, **common)


def output_folders(result: RunResult) -> dict[str, dict[str, str]]:
    """node -> output -> the readable folder holding it (for the end-of-run summary)."""
    found: dict[str, dict[str, str]] = {}
    for name, stage in result.stages.items():
        for output, ref in stage.outputs.items():
            if output != NODE_INFO and isinstance(ref, Mapping) and "path" in ref:
                found.setdefault(name, {})[output] = str(ref["path"])
    return found


def step_seconds(result: RunResult) -> float:
    """Seconds the steps' own code ran (what ``main``/``run`` took), over the run."""
    total = 0.0
    for stage in result.stages.values():
        info = stage.outputs.get(NODE_INFO)
        if isinstance(info, Mapping) and stage.status.value == "completed":
            total += float(info.get("step_seconds", 0.0))
    return total


def watch_run(
    state_factory: Callable[[], StateRepository],
    run: Callable[[], RunResult],
    *,
    pipeline: str,
    on_update: Callable[[str | None, Iterable[Any]], None],
    interval: float = 0.2,
) -> RunResult:
    """Run ``run`` in a thread while polling the state store for its stage records."""
    import time

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = run()
        except BaseException as exc:  # handed back to the caller's thread below
            box["error"] = exc

    started = time.time()
    thread = threading.Thread(target=target, name="stepkit-run", daemon=True)
    thread.start()
    reader = state_factory()
    run_id: str | None = None
    try:
        while thread.is_alive():
            thread.join(interval)
            if run_id is None:
                runs = reader.list_runs(pipeline=pipeline, limit=1)
                if runs and (runs[0].started_at or 0) >= started - 1:
                    run_id = runs[0].run_id
            on_update(run_id, reader.stage_records(run_id) if run_id else [])
    finally:
        reader.close()
    if "error" in box:
        raise box["error"]
    result: RunResult = box["result"]
    return result


def default_state(project: Project) -> StateRepository:
    """The project's configured state store (``[state] url``; SQLite by default)."""
    from stepkit.state import open_state

    return open_state(project)


def state_path(project: Project) -> Path:
    return project.state_dir / "state.db"
