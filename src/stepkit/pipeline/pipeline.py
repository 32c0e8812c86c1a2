"""``Pipeline``: stages declared with ``@pipeline.stage``, composed with ``include``, run and
resumed with durable state.

Factories are plain functions that return a ``Pipeline``; ``include`` puts one pipeline
inside another under a prefix, so a factory's pipeline can be reused any number of times.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, Unpack

from stepkit.errors import PipelineDefinitionError, ProjectNotFoundError, RunLeaseError
from stepkit.pipeline.dag import DAG
from stepkit.pipeline.orphans import kill_orphans
from stepkit.pipeline.resources import RunResources
from stepkit.pipeline.results import RunResult
from stepkit.pipeline.settings import Progress, RunSettings, SettingsOverrides
from stepkit.pipeline.stage import NO_RETRY, Mode, RetryPolicy, Stage
from stepkit.project import Project
from stepkit.state.backends import open_state, open_state_url
from stepkit.state.base import StateRepository
from stepkit.state.leases import Heartbeat, holder, interrupt, lease_is_dead, reap_expired
from stepkit.state.records import RunRecord, RunStatus, StageRecord, latest_attempts
from stepkit.state.sqlite import SQLiteStateRepository

#: A state store, the URL of one (``memory://``, ``sqlite:///PATH``, ``postgresql://…``), or
#: None for the default: the project's store, else ``.stepkit/state.db`` in the current folder.
StateArg = StateRepository | str | None

F = TypeVar("F", bound=Callable[..., Any])


def new_run_id() -> str:
    """Sortable and unique: ``20260131-142502-1f3a9c0e`` (UTC time, then 32 random bits)."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


class Pipeline:
    """A named DAG of stages.

    Args:
        name: what runs are listed under.
        source: ``"module:attr"`` naming this pipeline (or a factory returning it), so that
            ``stepkit runs resume`` can rebuild it; recorded with every run.
    """

    def __init__(self, name: str, *, source: str | None = None) -> None:
        self.name = name
        self.source = source
        self._stages: dict[str, Stage] = {}

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, stages={len(self._stages)})"

    @property
    def stages(self) -> Mapping[str, Stage]:
        return dict(self._stages)

    def stage(
        self,
        name: str | None = None,
        *,
        depends_on: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        mode: Mode = "direct",
    ) -> Callable[[F], F]:
        """Decorator: the function becomes a stage (named after it unless ``name``).

        The function takes the :class:`StageContext` and returns a mapping of outputs (or
        None); it is returned unchanged, so it stays importable and testable on its own.
        """

        def decorate(fn: F) -> F:
            self.add(
                name or fn.__name__,
                fn,
                depends_on=depends_on,
                retry=retry,
                timeout=timeout,
                mode=mode,
            )
            return fn

        return decorate

    def add(
        self,
        name: str,
        target: Any,
        *,
        depends_on: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        mode: Mode = "direct",
    ) -> Stage:
        """Add a stage: a function ``fn(context)`` or an object with ``execute(context)``
        (and optional ``validate(context)``, ``cleanup(context)``)."""
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        stage = Stage(
            name=name,
            target=target,
            depends_on=tuple(depends_on),
            retry=retry or NO_RETRY,
            timeout=timeout,
            mode=mode,
        )
        self._put(stage)
        return stage

    def include(self, other: Pipeline, *, prefix: str, after: Sequence[str] = ()) -> None:
        """Add every stage of ``other`` as ``<prefix>.<stage>``; its first stages run
        after ``after``. Inside, stages still see their dependencies by their own names."""
        for stage in other._stages.values():
            deps = [f"{prefix}.{dep}" for dep in stage.depends_on]
            aliases = {f"{prefix}.{dep}": stage.local_name(dep) for dep in stage.depends_on}
            if not stage.depends_on:
                deps.extend(after)
            self._put(
                replace(
                    stage, name=f"{prefix}.{stage.name}", depends_on=tuple(deps), aliases=aliases
                )
            )

    def _put(self, stage: Stage) -> None:
        if stage.name in self._stages:
            raise PipelineDefinitionError(
                f"Pipeline {self.name!r} already has a stage named {stage.name!r}."
            )
        self._stages[stage.name] = stage

    def validate(self) -> list[str]:
        """Check the DAG (unknown dependencies, cycles) and that subprocess/distributed
        stages can be sent to another process; returns the stages in run order."""
        return self.dag().topological_order()

    def dag(self) -> DAG:
        """The stages as a :class:`DAG` (each stage's dependencies are its edges).

        Raises:
            UnknownStageError: a dependency names no stage (with close names).
        """
        for stage in self._stages.values():
            stage.check_portable()
        return DAG.from_dependencies(self.name, {n: s.depends_on for n, s in self._stages.items()})

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        *,
        inputs: Mapping[str, Any] | None = None,
        state: StateArg = None,
        settings: RunSettings | None = None,
        progress: Progress | None = None,
        **overrides: Unpack[SettingsOverrides],
    ) -> RunResult:
        """Run every stage, dependencies first, up to ``settings.max_workers`` at once.

        Args:
            inputs: JSON-serializable values every stage sees as ``context.inputs``.
            state: where the run is recorded. Default: the project's state store when the
                current folder is inside a project, else ``.stepkit/state.db`` here; pass
                ``"memory://"`` (or a ``MemoryStateRepository``) to keep it in memory only.
            settings: how to run (:class:`RunSettings`); single fields may be given as
                keywords instead (``max_workers=4``), which override ``settings``.
            progress: called after every commit with what was written (a live view).

        Raises:
            RunCancelled: on Ctrl-C, after recording the run as cancelled.
        """
        settings = replace(settings or RunSettings(), **overrides)
        dag = self.dag()
        dag.topological_order()
        inputs = dict(inputs or {})
        _check_inputs(self.name, inputs)
        with _opened(state) as store:
            for reaped in reap_expired(store):  # their runners died: so must their stages
                kill_orphans(RunResources(reaped, temp_root=settings.temp_root).processes_dir)
            now = time.time()
            run = RunRecord(
                run_id=new_run_id(),
                pipeline=self.name,
                status=RunStatus.RUNNING,
                inputs=inputs,
                graph=dag.dependencies(),
                source=self.source,
                created_at=now,
                started_at=now,
                host=socket.gethostname(),
                pid=os.getpid(),
                lease_expires_at=now + settings.lease_seconds,
            )
            store.commit(runs=[run])
            return self._execute(dag, run, store, settings, progress, kept={}, last_attempt={})

    def resume(
        self,
        run_id: str,
        *,
        state: StateArg = None,
        settings: RunSettings | None = None,
        progress: Progress | None = None,
        **overrides: Unpack[SettingsOverrides],
    ) -> RunResult:
        """Run again what a run did not finish: failed, timed-out, interrupted, cancelled,
        skipped and never-started stages. Completed (and cached) stages keep their
        recorded outputs and are not run again. ``state`` defaults as for :meth:`run`, so
        a run made without ``state=`` is found again without it.

        Raises:
            UnknownRunError: the store has no such run.
            RunLeaseError: another runner is alive and still holds the run.
        """
        settings = replace(settings or RunSettings(), **overrides)
        dag = self.dag()
        dag.topological_order()
        with _opened(state) as store:
            run = _claim(store, run_id, dag, lease_seconds=settings.lease_seconds)
            latest = latest_attempts(store.stage_records(run_id))
            kept: dict[str, StageRecord] = {
                name: record
                for name, record in latest.items()
                if record.status.done and name in self._stages
            }
            last_attempt = {name: record.attempt for name, record in latest.items()}
            return self._execute(
                dag, run, store, settings, progress, kept=kept, last_attempt=last_attempt
            )

    def _execute(
        self,
        dag: DAG,
        run: RunRecord,
        state: StateRepository,
        settings: RunSettings,
        progress: Progress | None,
        *,
        kept: Mapping[str, StageRecord],
        last_attempt: Mapping[str, int],
    ) -> RunResult:
        from stepkit.pipeline.runner import Runner  # tenacity, structlog: only when running

        resources = RunResources(
            run.run_id,
            temp_root=settings.temp_root,
            scratch_root=settings.scratch_root,
            keep_temp=settings.keep_temp,
        )
        # A stage a dead runner of this run left running would otherwise run twice at once.
        kill_orphans(resources.processes_dir)
        runner = Runner(
            dag=dag,
            stages=self._stages,
            state=state,
            settings=settings,
            resources=resources,
            progress=progress,
        )
        try:
            with Heartbeat(state, run.run_id, lease_seconds=settings.lease_seconds) as heartbeat:
                return runner.execute(
                    run, kept=kept, last_attempt=last_attempt, lease_lost=heartbeat.lost
                )
        finally:
            runner.close()
            resources.close()


def _claim(store: StateRepository, run_id: str, dag: DAG, *, lease_seconds: float) -> RunRecord:
    """Take the run over for a resume: reap it if its runner is dead, then claim it."""
    run = store.get_run(run_id)
    now = time.time()
    if run.status == RunStatus.RUNNING:
        if not lease_is_dead(run, now=now):
            raise RunLeaseError(run_id, holder(run), (run.lease_expires_at or now) - now)
        reaped = interrupt(store, run, now=now)
        if reaped is None:  # another runner claimed or renewed it since we looked
            current = store.get_run(run_id)
            raise RunLeaseError(run_id, holder(current), (current.lease_expires_at or now) - now)
        run = reaped
    run = replace(
        run,
        status=RunStatus.RUNNING,
        graph=dag.dependencies(),
        finished_at=None,
        error=None,
        host=socket.gethostname(),
        pid=os.getpid(),
        lease_expires_at=now + lease_seconds,
    )
    if not store.claim_run(run):  # another runner resumed it a moment ago
        current = store.get_run(run_id)
        raise RunLeaseError(run_id, holder(current), (current.lease_expires_at or now) - now)
    return run


def default_state(cwd: Path | None = None) -> StateRepository:
    """The store a run goes to when none is named: the project's (``[state] url``, else
    ``<state_dir>/state.db``) inside a project, else ``.stepkit/state.db`` in ``cwd``."""
    here = cwd or Path.cwd()
    try:
        project = Project.load(cwd=here)
    except ProjectNotFoundError:
        return SQLiteStateRepository(here / ".stepkit" / "state.db")
    return open_state(project)


@contextmanager
def _opened(state: StateArg) -> Iterator[StateRepository]:
    """``state`` as a store; one opened here (a URL, or the default) is closed here."""
    if isinstance(state, StateRepository):
        yield state
        return
    if state is None:
        store = default_state()
    else:
        store = open_state_url(state, root=Path.cwd(), key="state")
    try:
        yield store
    finally:
        store.close()


def _check_inputs(pipeline: str, inputs: Mapping[str, Any]) -> None:
    for key, value in inputs.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise PipelineDefinitionError(
                f"Pipeline {pipeline!r}: input {key!r}: {type(value).__name__} is not "
                f"JSON-serializable ({exc})."
            ) from exc
