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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from stepkit.errors import PipelineDefinitionError, RunLeaseError
from stepkit.pipeline.dag import validate_graph
from stepkit.pipeline.resources import RunResources
from stepkit.pipeline.results import RunResult
from stepkit.pipeline.stage import NO_RETRY, Mode, RetryPolicy, Stage
from stepkit.state.base import StateRepository
from stepkit.state.leases import (
    DEFAULT_LEASE_SECONDS,
    Heartbeat,
    holder,
    interrupt,
    lease_is_dead,
    reap_expired,
)
from stepkit.state.memory import MemoryStateRepository
from stepkit.state.records import RunRecord, RunStatus, StageRecord, latest_attempts

F = TypeVar("F", bound=Callable[..., Any])


def new_run_id() -> str:
    """Sortable and unique: ``20260131-142502-1f3a9c0e`` (UTC time, then 32 random bits)."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def default_max_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


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
        for stage in self._stages.values():
            stage.check_portable()
        return validate_graph(self.name, {n: s.depends_on for n, s in self._stages.items()})

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        *,
        inputs: Mapping[str, Any] | None = None,
        state: StateRepository | None = None,
        executor: Executor | None = None,
        max_workers: int | None = None,
        fail_fast: bool = False,
        keep_temp: bool = False,
        temp_root: Path | None = None,
        scratch_root: Path | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        cancel_event: threading.Event | None = None,
    ) -> RunResult:
        """Run every stage, dependencies first, up to ``max_workers`` at once.

        Args:
            inputs: JSON-serializable values every stage sees as ``context.inputs``.
            state: where runs are recorded (durable: ``SQLiteStateRepository``); default
                in memory, gone when the process ends.
            executor: the ``concurrent.futures.Executor`` for ``distributed`` stages.
            fail_fast: stop the whole run at the first stage that fails for good.
            keep_temp: keep the per-run and per-stage temp/scratch folders.
            cancel_event: set it to stop the run (stages recorded ``cancelled``).

        Raises:
            RunCancelled: on Ctrl-C, after recording the run as cancelled.
        """
        self.validate()
        state = state if state is not None else MemoryStateRepository()
        inputs = dict(inputs or {})
        _check_inputs(self.name, inputs)
        reap_expired(state)
        now = time.time()
        run = RunRecord(
            run_id=new_run_id(),
            pipeline=self.name,
            status=RunStatus.RUNNING,
            inputs=inputs,
            graph={name: stage.depends_on for name, stage in self._stages.items()},
            source=self.source,
            created_at=now,
            started_at=now,
            host=socket.gethostname(),
            pid=os.getpid(),
            lease_expires_at=now + lease_seconds,
        )
        state.commit(runs=[run])
        return self._execute(
            run,
            state=state,
            kept={},
            last_attempt={},
            executor=executor,
            max_workers=max_workers,
            fail_fast=fail_fast,
            keep_temp=keep_temp,
            temp_root=temp_root,
            scratch_root=scratch_root,
            lease_seconds=lease_seconds,
            cancel_event=cancel_event,
        )

    def resume(
        self,
        run_id: str,
        *,
        state: StateRepository,
        executor: Executor | None = None,
        max_workers: int | None = None,
        fail_fast: bool = False,
        keep_temp: bool = False,
        temp_root: Path | None = None,
        scratch_root: Path | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        cancel_event: threading.Event | None = None,
    ) -> RunResult:
        """Run again what a run did not finish: failed, timed-out, interrupted, cancelled,
        skipped and never-started stages. Completed (and cached) stages keep their
        recorded outputs and are not run again.

        Raises:
            RunLeaseError: another runner is alive and still holds the run.
        """
        self.validate()
        run = state.get_run(run_id)
        now = time.time()
        if run.status == RunStatus.RUNNING:
            if not lease_is_dead(run, now=now):
                raise RunLeaseError(run_id, holder(run), (run.lease_expires_at or now) - now)
            reaped = interrupt(state, run, now=now)
            if reaped is None:  # another runner claimed or renewed it since we looked
                current = state.get_run(run_id)
                raise RunLeaseError(
                    run_id, holder(current), (current.lease_expires_at or now) - now
                )
            run = reaped
        latest = latest_attempts(state.stage_records(run_id))
        kept: dict[str, StageRecord] = {
            name: record
            for name, record in latest.items()
            if record.status.done and name in self._stages
        }
        run = replace(
            run,
            status=RunStatus.RUNNING,
            graph={name: stage.depends_on for name, stage in self._stages.items()},
            finished_at=None,
            error=None,
            host=socket.gethostname(),
            pid=os.getpid(),
            lease_expires_at=now + lease_seconds,
        )
        if not state.claim_run(run):  # another runner resumed it a moment ago
            current = state.get_run(run_id)
            raise RunLeaseError(run_id, holder(current), (current.lease_expires_at or now) - now)
        return self._execute(
            run,
            state=state,
            kept=kept,
            last_attempt={name: record.attempt for name, record in latest.items()},
            executor=executor,
            max_workers=max_workers,
            fail_fast=fail_fast,
            keep_temp=keep_temp,
            temp_root=temp_root,
            scratch_root=scratch_root,
            lease_seconds=lease_seconds,
            cancel_event=cancel_event,
        )

    def _execute(
        self,
        run: RunRecord,
        *,
        state: StateRepository,
        kept: Mapping[str, StageRecord],
        last_attempt: Mapping[str, int],
        executor: Executor | None,
        max_workers: int | None,
        fail_fast: bool,
        keep_temp: bool,
        temp_root: Path | None,
        scratch_root: Path | None,
        lease_seconds: float,
        cancel_event: threading.Event | None,
    ) -> RunResult:
        from stepkit.pipeline.runner import Runner

        if max_workers is not None and max_workers < 1:
            raise PipelineDefinitionError(f"max_workers must be at least 1, not {max_workers}.")
        resources = RunResources(
            run.run_id, temp_root=temp_root, scratch_root=scratch_root, keep_temp=keep_temp
        )
        runner = Runner(
            stages=self._stages,
            state=state,
            resources=resources,
            max_workers=max_workers or default_max_workers(),
            executor=executor,
            fail_fast=fail_fast,
            lease_seconds=lease_seconds,
            cancel_event=cancel_event,
        )
        try:
            with Heartbeat(state, run.run_id, lease_seconds=lease_seconds) as heartbeat:
                return runner.execute(
                    run, kept=kept, last_attempt=last_attempt, lease_lost=heartbeat.lost
                )
        finally:
            runner.close()
            resources.close()


def _check_inputs(pipeline: str, inputs: Mapping[str, Any]) -> None:
    for key, value in inputs.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise PipelineDefinitionError(
                f"Pipeline {pipeline!r}: input {key!r}: {type(value).__name__} is not "
                f"JSON-serializable ({exc})."
            ) from exc
