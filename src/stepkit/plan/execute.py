"""The library call behind ``stepkit plan``, ``stepkit run`` and ``stepkit runs resume``.

:func:`plan_dag` resolves a DAG of catalogued steps; :func:`run_dag` plans it, turns the
plan into a pipeline of node stages and runs it with durable state and caching;
:func:`resume_run` resumes a recorded run with the DAG and config it was made with. The CLI
parses its options, calls one of these, and prints what comes back.

Before anything starts, the plan is walked in order and every node whose inputs are
already known (a source node, or one fed only by hits) is looked up in the cache: a hit
becomes a stage that just hands back the recorded artifacts, so a fully cached re-run
starts no process at all. Every other node is a :class:`~stepkit.plan.node.NodeTask`, run
isolated (a fresh child process by default) and looked up again there, now that its
inputs' digests are known.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.catalog import StepCatalog
from stepkit.errors import PipelineDefinitionError, PlanError, ResumeMismatchError
from stepkit.pipeline.dag import DAG
from stepkit.pipeline.dask_executor import (
    check_executor,
    dask_executor,
    is_dask,
    lost_worker_policy,
)
from stepkit.pipeline.pipeline import Pipeline
from stepkit.pipeline.settings import Progress, RunSettings
from stepkit.plan.cache import CACHE_FILE as CACHE_FILE
from stepkit.plan.cache_backends import cache_location
from stepkit.plan.config import PipelineConfig, load_pipeline_config
from stepkit.plan.dagfile import load_dag
from stepkit.plan.node import NODE_INFO, CachedNode, NodeTask, lookup
from stepkit.plan.planner import Plan, plan_pipeline
from stepkit.project import Project
from stepkit.state.backends import open_state
from stepkit.state.base import StateRepository

if TYPE_CHECKING:
    from stepkit.envs.store import Environment
    from stepkit.errors import StepkitError
    from stepkit.pipeline.results import RunResult
    from stepkit.pipeline.stage import Mode, RetryPolicy
    from stepkit.state.records import RunRecord

#: "local" | "process" | "dask-local" | "dask://HOST:PORT" (checked by ``check_executor``)
ExecutorName = str
#: A project, or the path of one (its folder or its stepkit.toml).
ProjectArg = Project | Path | str
#: A DAG, or the path of its file.
DagArg = DAG | Path | str
#: A pipeline config, the path of its file, or None (no config).
ConfigArg = PipelineConfig | Path | str | None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the steps of a DAG run: where (``executor``), for how long, which cache
    entries count (``no_cache`` runs every node, ``refresh`` the nodes named), and the
    job arguments given on the command line (``args``: ``--arg NAME=VALUE``, for every
    script node; they win over the config's and are part of each cache key), and whether
    script steps run in the sandbox (:mod:`stepkit.plan.sandboxed`); ``inputs`` seeds node
    inputs from local files or folders (:mod:`stepkit.plan.seeds`)."""

    executor: ExecutorName = "local"
    no_cache: bool = False
    refresh: frozenset[str] = frozenset()
    timeout: float | None = None
    #: "shared" | "per-step" (stepkit.envs.modes); None: the project's [run] environments
    env_mode: str | None = None
    #: told one line when a step's environment is built (never when one is reused), and
    #: when the sandbox asked for cannot run here
    notice: Callable[[str], None] | None = field(default=None, compare=False)
    args: Mapping[str, str] = field(default_factory=dict)
    sandbox: bool | None = None  # script steps under bubblewrap; None: [run] sandbox
    inputs: Mapping[str, str] = field(default_factory=dict)  # "NODE.INPUT" -> local path

    def __post_init__(self) -> None:
        check_executor(self.executor)
        if self.env_mode is not None:
            from stepkit.envs.modes import check_env_mode

            check_env_mode(self.env_mode)


def plan_dag(
    project: ProjectArg,
    dag: DagArg,
    *,
    config: ConfigArg = None,
    seeded: frozenset[str] = frozenset(),
) -> Plan:
    """Resolve, configure and wire every node of ``dag`` through the project's catalog
    (``seeded``: the ``NODE.INPUT`` names given from local data, which are not wired).

    Raises:
        DagFileError: the DAG or config file cannot be read (naming file and line).
        PlanInvalidError: every problem that keeps a node from running, each naming it.
    """
    project = _project(project)
    graph = dag if isinstance(dag, DAG) else load_dag(Path(dag))
    if not isinstance(config, PipelineConfig):
        config = load_pipeline_config(Path(config) if config is not None else None)
    return plan_pipeline(StepCatalog(project), graph, config, seeded=seeded)


def run_dag(
    project: ProjectArg,
    dag: DagArg,
    *,
    config: ConfigArg = None,
    options: RunOptions | None = None,
    settings: RunSettings | None = None,
    state: StateRepository | None = None,
    resume: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Plan ``dag`` and run it: ``stepkit run`` as one call.

    Args:
        options: executor, timeout and cache choices (default: the project's ``[run]``).
        settings: workers, fail_fast, keep_temp, cancel_event… (:class:`RunSettings`).
        state: the store to record into (default: the project's, opened and closed here).
        resume: a run id of this DAG to resume instead of starting a new run.
        progress: called after every commit of the run (a live view).

    Raises:
        ResumeMismatchError: ``resume`` names a run of another DAG or config.
        RunCancelled: Ctrl-C, after the run was recorded ``cancelled``.
    """
    project = _project(project)
    seeded = frozenset(options.inputs) if options is not None else frozenset()
    plan = plan_dag(project, dag, config=config, seeded=seeded)
    with _opened(project, state) as store:
        if resume is not None:
            recorded = store.get_run(resume)
            _check_same_source(resume, recorded.source, dag_source(plan))
            _check_same_options(resume, recorded.inputs.get(OPTIONS), ran_with(project, options))
        return _run_plan(plan, project, store, options, settings, resume, progress)


def resume_run(
    project: ProjectArg,
    run_id: str,
    *,
    pipeline: str | None = None,
    options: RunOptions | None = None,
    settings: RunSettings | None = None,
    state: StateRepository | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Resume a recorded run with what it was made with: ``stepkit runs resume`` as one call.

    A run of a DAG file is planned again from its recorded DAG and config files; a run of a
    Python pipeline is rebuilt from its recorded source (or ``pipeline``, ``MODULE:ATTR``).
    """
    project = _project(project)
    with _opened(project, state) as store:
        recorded = store.get_run(run_id)
        source = pipeline or recorded.source
        if not source:
            raise PipelineDefinitionError(
                f"Run {run_id!r} recorded no pipeline source; pass --pipeline MODULE:ATTR."
            )
        if source.startswith(DAG_SOURCE):  # a run of catalogued steps: plan it again
            dag_file, config_file = _source_files(source)
            options = _as_recorded(options or RunOptions(executor=project.run.executor), recorded)
            plan = plan_dag(project, dag_file, config=config_file, seeded=frozenset(options.inputs))
            return _run_plan(plan, project, store, options, settings, run_id, progress)
        from stepkit.pipeline.source import load_pipeline

        return load_pipeline(source).resume(
            run_id, state=store, settings=_settings(project, settings), progress=progress
        )


def _run_plan(
    plan: Plan,
    project: Project,
    state: StateRepository,
    options: RunOptions | None,
    settings: RunSettings | None,
    resume: str | None,
    progress: Progress | None,
) -> RunResult:
    """Run (or resume) the plan on the executor ``options`` name, recording into ``state``."""
    options = options or RunOptions(executor=project.run.executor)
    settings = _settings(project, settings)
    seeds: dict[str, dict[str, Path]] = {}
    if options.inputs:
        from stepkit.plan.seeds import parse_seeds

        contracts = {name: node.contract for name, node in plan.nodes.items()}
        seeds = parse_seeds(options.inputs, contracts, option="--input")
    pipeline = build_pipeline(plan, project, options, seeds=seeds)
    with _executor(options.executor, workers=settings.max_workers) as pool:
        if pool is not None:
            settings = replace(settings, executor=pool)
        if resume is not None:
            return pipeline.resume(resume, state=state, settings=settings, progress=progress)
        inputs = {"dag": str(plan.dag.source or plan.dag.name), OPTIONS: ran_with(project, options)}
        return pipeline.run(inputs=inputs, state=state, settings=settings, progress=progress)


def _project(project: ProjectArg) -> Project:
    return project if isinstance(project, Project) else Project.load(project)


def _settings(project: Project, settings: RunSettings | None) -> RunSettings:
    """``settings``, with the project's ``[run] max_workers`` where it names none."""
    settings = settings or RunSettings()
    if settings.max_workers is None and project.run.max_workers is not None:
        settings = replace(settings, max_workers=project.run.max_workers)
    return settings


@contextmanager
def _opened(project: Project, state: StateRepository | None) -> Iterator[StateRepository]:
    if state is not None:
        yield state
        return
    store = open_state(project)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _executor(name: ExecutorName, *, workers: int | None) -> Iterator[Executor | None]:
    """The pool ``distributed`` stages go to (None: the runner's own threads)."""
    if is_dask(name):
        with dask_executor(name, workers=workers) as executor:
            yield executor
        return
    if name != "process":
        yield None
        return
    from stepkit.processes import worker_pool

    pool = worker_pool(workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def step_environments(
    plan: Plan, project: Project, options: RunOptions
) -> tuple[dict[str, Environment], dict[str, StepkitError]]:
    """Per-step mode: each script node's own environment (built now if missing, before
    anything runs), and the nodes whose environment cannot be built, with why. Nodes that
    run in stepkit's own environment (no requirements; builders) are in neither."""
    from stepkit.envs.modes import StepEnvironments
    from stepkit.errors import StepkitError

    environments = StepEnvironments.for_mode(project, options.env_mode, notice=options.notice)
    found: dict[str, Environment] = {}
    broken: dict[str, StepkitError] = {}
    if environments is None:
        return found, broken
    for name, node in plan.nodes.items():
        if node.how != "script" or node.contract is None:
            continue  # a builder runs in stepkit's process: it needs stepkit itself
        try:
            environment = environments.environment(node.contract)
        except StepkitError as exc:
            broken[name] = exc
            continue
        if environment is not None:
            found[name] = environment
    return found, broken


def node_tasks(
    plan: Plan,
    project: Project,
    options: RunOptions,
    *,
    environments: Mapping[str, Environment] | None = None,
    seeds: Mapping[str, Mapping[str, Path]] | None = None,
) -> dict[str, NodeTask]:
    """One :class:`NodeTask` per node of the plan (``environments``: a node's own, if any);
    ``seeds`` (node -> input -> local path) are stored first, and each seeded node reads its
    seed from the store."""
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
    sandboxed = project.run.sandbox if options.sandbox is None else options.sandbox
    if sandboxed:
        from stepkit.plan.sandboxed import sandbox_off_warning

        if (warning := sandbox_off_warning()) is not None:  # once, before anything runs
            if options.notice is not None:
                options.notice(warning)
            else:
                warnings.warn(warning.removeprefix("warning: "), RuntimeWarning, stacklevel=3)
    seeded: dict[str, dict[str, dict[str, Any]]] = {}
    if seeds:
        from stepkit.plan.seeds import store_seeds

        seeded = store_seeds(seeds, store_root=str(project.artifacts_root), catalog_path=catalog)
    tasks: dict[str, NodeTask] = {}
    for name, node in plan.nodes.items():
        arguments = dict(node.arguments)
        flags: dict[str, str] = {}
        containers: dict[str, dict[str, str]] = {}
        if node.how == "script" and node.contract is not None:
            # given values, by the attribute name the script's parser makes of each
            arguments.update(node.contract.argument_values(given=options.args))
            flags = {dest: arg.flag for dest, arg in node.contract.declared_arguments().items()}
            containers = {
                "inputs": dict(node.contract.expected_input_paths),
                "outputs": dict(node.contract.expected_output_paths),
            }
        tasks[name] = NodeTask(
            node=name,
            how=node.how,
            files={role: str(p) if p else None for role, p in node.files.items()},
            config_class=type(node.config).__name__ if node.config is not None else "",
            builder_class=node.builder_class,
            config=node.config_values(),
            environment=dict(node.environment),
            arguments=arguments,
            flags=flags,
            containers=containers,
            sandbox=sandboxed and node.how == "script",
            seeded=seeded.get(name, {}),
            inputs={w.dependency: (w.source, w.output) for w in node.inputs},
            outputs=node.outputs,
            store_root=str(project.artifacts_root),
            catalog_path=catalog,
            cache_path=cache_path,
            lookup_cache=not (options.no_cache or name in options.refresh),
            venv=(environments or {}).get(name),
        )
    return tasks


def prefetch_hits(plan: Plan, tasks: Mapping[str, NodeTask]) -> dict[str, dict[str, Any]]:
    """Nodes whose cache entry can be found before running anything, with their outputs."""
    hits: dict[str, dict[str, Any]] = {}
    for name in plan.nodes:
        task = tasks.get(name)
        if task is None or not task.lookup_cache:
            continue
        digests = {dependency: ref["digest"] for dependency, ref in task.seeded.items()}
        for dependency, (upstream, output) in task.inputs.items():
            if upstream not in hits:
                break
            digests[dependency] = hits[upstream][output]["digest"]
        else:
            found = lookup(task.cache_path, task.key(digests).digest, store_root=task.store_root)
            if found is not None:
                hits[name] = found
    return hits


def build_pipeline(
    plan: Plan,
    project: Project,
    options: RunOptions,
    *,
    seeds: Mapping[str, Mapping[str, Path]] | None = None,
) -> Pipeline:
    """The plan as an orchestrator pipeline (see the module docstring)."""
    environments, broken = step_environments(plan, project, options)
    tasks = node_tasks(plan, project, options, environments=environments, seeds=seeds)
    hits = prefetch_hits(plan, {n: t for n, t in tasks.items() if n not in broken})
    pipeline = Pipeline(plan.dag.name, source=dag_source(plan))
    mode: Mode = "subprocess" if options.executor == "local" else "distributed"
    retry: RetryPolicy | None = None
    if is_dask(options.executor):
        # A node is retried when its worker dies under it, never because its step failed:
        # a step's own error is deterministic, and the cache makes re-running cheap anyway.
        retry = lost_worker_policy()
    for name, node in plan.nodes.items():
        if name in broken:  # fails as a stage: its descendants are skipped, the rest runs
            pipeline.add(name, _Unbuilt(broken[name]), depends_on=node.depends_on, mode="direct")
        elif name in hits:
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


@dataclass(frozen=True, slots=True)
class _Unbuilt:
    """A node whose environment could not be built: its stage fails with why."""

    error: Exception

    def execute(self, context: Any) -> Any:
        raise self.error


DAG_SOURCE = "stepkit-dag:"


def dag_source(plan: Plan) -> str | None:
    """What a run records so ``stepkit runs resume`` can plan it again: the DAG and config files."""
    if plan.dag.source is None:
        return None
    config = plan.config_source.absolute() if plan.config_source else ""
    return f"{DAG_SOURCE}{plan.dag.source.absolute()}::{config}"


def _source_files(source: str) -> tuple[Path, Path | None]:
    dag_file, _, config_file = source.removeprefix(DAG_SOURCE).partition("::")
    return Path(dag_file), Path(config_file) if config_file else None


#: the run input under which a DAG run records the options that shape its results
OPTIONS = "options"


def ran_with(project: Project, options: RunOptions | None) -> dict[str, Any]:
    """The options that shape a DAG run's results, as its run records them (settings
    resolved, input paths absolute), so that a resume runs the rest the same way."""
    options = options or RunOptions(executor=project.run.executor)
    return {
        "args": dict(options.args),
        "inputs": {seed: str(Path(path).absolute()) for seed, path in options.inputs.items()},
        "sandbox": project.run.sandbox if options.sandbox is None else options.sandbox,
        "env_mode": options.env_mode or project.run.environments,
    }


def _as_recorded(options: RunOptions, run: RunRecord) -> RunOptions:
    """``options`` with what the run recorded of its own (a run made before stepkit
    recorded options resumes with ``options`` as given)."""
    recorded = run.inputs.get(OPTIONS)
    if not isinstance(recorded, Mapping):
        return options
    return replace(
        options,
        args=recorded["args"],
        inputs=recorded["inputs"],
        sandbox=recorded["sandbox"],
        env_mode=recorded["env_mode"],
    )


def _check_same_options(run_id: str, recorded: Any, given: Mapping[str, Any]) -> None:
    """``run --resume`` with other ``--arg``/``--input``/sandbox/environments than the run
    was made with would mix results of two settings in one run: it is refused."""
    if not isinstance(recorded, Mapping):
        return  # recorded before runs recorded their options
    for key, flag in (("args", "--arg"), ("inputs", "--input")):
        if dict(recorded[key]) != dict(given[key]):
            raise ResumeMismatchError(
                run_id, flag, _pairs(recorded[key]) or "none", _pairs(given[key]) or "none"
            )
    if recorded["sandbox"] != given["sandbox"]:
        said = {True: "the sandbox", False: "no sandbox"}
        raise ResumeMismatchError(run_id, "", said[recorded["sandbox"]], said[given["sandbox"]])
    if recorded["env_mode"] != given["env_mode"]:
        raise ResumeMismatchError(run_id, "environments", recorded["env_mode"], given["env_mode"])


def _pairs(values: Mapping[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in sorted(values.items()))


def _check_same_source(run_id: str, recorded: str | None, given: str | None) -> None:
    """A resume runs the DAG and config the run was made with, or it is refused."""
    if recorded == given or recorded is None or given is None:
        return
    if not recorded.startswith(DAG_SOURCE):
        raise ResumeMismatchError(run_id, "the pipeline", recorded, "a DAG file")
    old_dag, old_config = _source_files(recorded)
    new_dag, new_config = _source_files(given)
    if old_dag != new_dag:
        raise ResumeMismatchError(run_id, "DAG", str(old_dag), str(new_dag))
    raise ResumeMismatchError(
        run_id,
        "config",
        str(old_config) if old_config else "no config",
        str(new_config) if new_config else "no config",
    )


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
