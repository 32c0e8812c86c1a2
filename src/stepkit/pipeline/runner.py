"""The scheduler loop: one run of a pipeline, its state written by this process alone.

Each turn of the loop gathers what workers reported (finished attempts, log batches),
decides what runs next, commits all of it in ONE transaction, and only then starts the
stages that became ready. So a stage counts as done only once its record is committed, a
dependent never starts before that, and the store sees one commit per turn — not one per
stage, let alone one per log line.
"""

from __future__ import annotations

import graphlib
import heapq
import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from stepkit.child import run_in_worker
from stepkit.errors import StageTimeoutError
from stepkit.observability import get_logger, get_meter
from stepkit.pipeline.context import StageContext
from stepkit.pipeline.dag import sinks
from stepkit.pipeline.executors import (
    Outcome,
    ProcessTable,
    failure,
    outcome_from_report,
    run_direct,
    run_subprocess,
)
from stepkit.pipeline.resources import RunResources
from stepkit.pipeline.results import RunCancelled, RunResult, StageResult
from stepkit.pipeline.stage import Stage
from stepkit.state.base import StateRepository
from stepkit.state.records import LogBatch, RunRecord, RunStatus, StageRecord, StageStatus


@cache
def _instruments() -> tuple[Any, Any, Any]:
    meter = get_meter()
    return (
        meter.create_histogram("stepkit.stage.duration", unit="s", description="Stage attempt"),
        meter.create_counter("stepkit.stage.retries", description="Stage attempts retried"),
        meter.create_counter("stepkit.stage.failures", description="Stages failed for good"),
    )


@dataclass(slots=True)
class _Active:
    stage: Stage
    attempt: int
    record: StageRecord
    context: StageContext
    deadline: float | None  # enforced here for direct/distributed; subprocess kills itself
    future: Future[Any] | None = None


class Runner:
    """Runs the stages of one run; see :meth:`Pipeline.run` for what the options mean."""

    def __init__(
        self,
        *,
        stages: Mapping[str, Stage],
        state: StateRepository,
        resources: RunResources,
        max_workers: int,
        executor: Executor | None,
        fail_fast: bool,
        lease_seconds: float,
        cancel_event: threading.Event | None,
    ) -> None:
        self.stages = stages
        self.graph = {name: stage.depends_on for name, stage in stages.items()}
        self.state = state
        self.resources = resources
        self.max_workers = max_workers
        self.executor = executor
        self.fail_fast = fail_fast
        self.lease_seconds = lease_seconds
        self.cancel_event = cancel_event
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="stepkit")
        self._processes = ProcessTable()
        self._tokens = itertools.count(1)
        self._last_failure: dict[str, StageRecord] = {}
        self._log: Any = None

    # -- the loop ----------------------------------------------------------------------------

    def execute(
        self,
        run: RunRecord,
        *,
        kept: Mapping[str, StageRecord],
        last_attempt: Mapping[str, int],
        lease_lost: threading.Event | None = None,
    ) -> RunResult:
        """Run every stage not in ``kept`` (completed earlier); returns when all are final.

        If ``lease_lost`` is set (another runner reaped this run, taking us for dead), the
        run stops as if cancelled and leaves the run record to whoever holds it now.
        """
        sorter = graphlib.TopologicalSorter(self.graph)
        sorter.prepare()
        ready: deque[str] = deque(sorter.get_ready())
        active: dict[int, _Active] = {}
        retry_heap: list[tuple[float, int, str, int]] = []
        finals: dict[str, StageRecord] = {}
        outputs_of: dict[str, Mapping[str, Any]] = {n: r.outputs for n, r in kept.items()}
        stage_writes: list[StageRecord] = []
        log_writes: list[LogBatch] = []
        launches: list[_Active] = []
        stopping: str | None = None
        cancelled = interrupted = lost = False
        retries = run.retries
        histogram, retry_counter, failure_counter = _instruments()
        # Bound per run (not at import), so logging configured after import is honoured.
        self._log = _log = get_logger("stepkit.pipeline")

        first_failure: list[str] = []

        def finish(name: str, record: StageRecord) -> None:
            if record.status in (StageStatus.FAILED, StageStatus.TIMED_OUT):
                first_failure.append(name)
            finals[name] = record
            sorter.done(name)
            ready.extend(sorter.get_ready())

        def stop_active(reason: str) -> None:
            self._processes.kill_all()
            now = time.time()
            for token, item in list(active.items()):
                del active[token]
                if item.future is not None:
                    item.future.cancel()
                record = replace(
                    item.record,
                    status=StageStatus.CANCELLED,
                    finished_at=now,
                    duration=now - (item.record.started_at or now),
                    reason=reason,
                )
                stage_writes.append(record)
                finish(item.stage.name, record)
            while retry_heap:
                _, _, name, _ = heapq.heappop(retry_heap)
                finish(name, finals.get(name) or self._last_failure[name])

        while True:
            try:
                now = time.time()
                if self.cancel_event is not None and self.cancel_event.is_set() and not cancelled:
                    cancelled = True
                    stopping = "run cancelled"
                    stop_active(stopping)
                if lease_lost is not None and lease_lost.is_set() and not cancelled:
                    cancelled = lost = True
                    stopping = "lease lost: another runner took the run over"
                    stop_active(stopping)
                # Retries whose wait is over, then stages whose dependencies are final.
                while (
                    retry_heap
                    and retry_heap[0][0] <= now
                    and len(active) + len(launches) < self.max_workers
                ):
                    _, _, name, attempt = heapq.heappop(retry_heap)
                    launches.append(self._prepare(run, name, attempt, outputs_of, stage_writes))
                while ready:
                    name = ready[0]
                    if name in kept:
                        ready.popleft()
                        finish(name, kept[name])
                        continue
                    blocker = self._blocker(name, finals, kept)
                    if blocker is not None or stopping is not None:
                        ready.popleft()
                        reason = stopping if blocker is None else blocker
                        record = StageRecord(
                            run_id=run.run_id,
                            stage=name,
                            attempt=last_attempt.get(name, 0) + 1,
                            status=StageStatus.SKIPPED,
                            mode=self.stages[name].mode,
                            finished_at=now,
                            reason=reason,
                        )
                        stage_writes.append(record)
                        _log.info("stage_skipped", run_id=run.run_id, stage=name, reason=reason)
                        finish(name, record)
                        continue
                    if len(active) + len(launches) >= self.max_workers:
                        break
                    ready.popleft()
                    attempt = last_attempt.get(name, 0) + 1
                    launches.append(self._prepare(run, name, attempt, outputs_of, stage_writes))
                # One commit for everything learnt this turn, before anything new starts.
                if (stage_writes or log_writes) and not lost:
                    self.state.commit(stages=stage_writes, logs=log_writes)
                stage_writes.clear()
                log_writes.clear()
                # The only stage that can run, direct and without a timeout, runs on this
                # thread: nothing else could start meanwhile, and it saves two thread
                # hand-offs per stage (most of a no-op stage's cost).
                inline = (
                    len(launches) == 1
                    and not active
                    and not ready
                    and not retry_heap
                    and launches[0].stage.mode == "direct"
                    and launches[0].stage.timeout is None
                )
                for item in launches:
                    _log.info(
                        "stage_started",
                        run_id=run.run_id,
                        stage=item.stage.name,
                        attempt=item.attempt,
                    )
                    token = next(self._tokens)
                    active[token] = item
                    if inline:
                        self._events.put(("done", token, run_direct(item.stage, item.context)))
                    else:
                        self._submit(token, item)
                launches.clear()
                if not active and not retry_heap and not ready:
                    break
                # Sleep until a worker reports, a deadline passes or a retry is due.
                wake = time.time() + 1.0
                for item in active.values():
                    if item.deadline is not None:
                        wake = min(wake, item.deadline)
                if retry_heap:
                    wake = min(wake, retry_heap[0][0])
                if self.cancel_event is not None:
                    wake = min(wake, time.time() + 0.05)
                if lease_lost is not None:
                    wake = min(wake, time.time() + min(0.5, self.lease_seconds / 3))
                try:
                    event = self._events.get(timeout=max(0.0, wake - time.time()))
                except queue.Empty:
                    event = None
                while event is not None:
                    if event[0] == "logs":
                        log_writes.extend(event[1])
                    else:
                        found = active.pop(event[1], None)
                        if found is not None:  # None: abandoned (timed out or cancelled)
                            outcome = self._outcome(found, event[2])
                            retries += self._record(
                                run,
                                found,
                                outcome,
                                stage_writes,
                                outputs_of,
                                retry_heap,
                                finish,
                                histogram,
                                retry_counter,
                                failure_counter,
                            )
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        event = None
                now = time.time()
                for token, item in list(active.items()):
                    if item.deadline is not None and now >= item.deadline:
                        del active[token]
                        self._abandon(item)
                        assert item.stage.timeout is not None
                        timeout_error = StageTimeoutError(
                            item.stage.name, item.stage.timeout, mode=item.stage.mode
                        )
                        outcome = failure(timeout_error, started_at=item.record.started_at or now)
                        retries += self._record(
                            run,
                            item,
                            outcome,
                            stage_writes,
                            outputs_of,
                            retry_heap,
                            finish,
                            histogram,
                            retry_counter,
                            failure_counter,
                        )
                if self.fail_fast and first_failure and stopping is None:
                    stopping = f"fail_fast: stage {first_failure[0]!r} failed"
                    stop_active(stopping)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = cancelled = True
                stopping = "run cancelled (interrupted)"
                stop_active(stopping)

        # Lines a stopped stage wrote before it was killed are still worth keeping.
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event[0] == "logs":
                log_writes.extend(event[1])
        status = RunStatus.COMPLETED
        if cancelled:
            status = RunStatus.CANCELLED
        elif any(not record.status.done for record in finals.values()):
            status = RunStatus.FAILED
        failed = [
            n for n, r in finals.items() if r.status in (StageStatus.FAILED, StageStatus.TIMED_OUT)
        ]
        error = f"stages failed: {', '.join(failed)}" if failed else stopping
        final_outputs = {name: dict(outputs_of.get(name, {})) for name in sinks(self.graph)}
        run = replace(
            run,
            status=status,
            outputs=final_outputs if status == RunStatus.COMPLETED else {},
            finished_at=time.time(),
            error=None if status == RunStatus.COMPLETED else error,
            retries=retries,
            lease_expires_at=None,
        )
        # A lost lease means the run is someone else's now: its records are theirs to write.
        if not lost:
            self.state.commit(runs=[run], stages=stage_writes, logs=log_writes)
        result = RunResult(
            run_id=run.run_id,
            pipeline=run.pipeline,
            status=status,
            stages={name: StageResult.from_record(finals[name]) for name in self.graph},
            outputs=final_outputs if status == RunStatus.COMPLETED else {},
            error=run.error,
        )
        if interrupted:
            raise RunCancelled(result)
        return result

    def close(self) -> None:
        """Stop the worker pool without waiting for abandoned (timed-out) threads."""
        self._processes.kill_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- one attempt -------------------------------------------------------------------------

    def _blocker(
        self, name: str, finals: Mapping[str, StageRecord], kept: Mapping[str, StageRecord]
    ) -> str | None:
        for dep in self.stages[name].depends_on:
            record = finals.get(dep) or kept.get(dep)
            if record is not None and not record.status.done:
                return f"upstream stage {dep!r} {record.status}"
        return None

    def _prepare(
        self,
        run: RunRecord,
        name: str,
        attempt: int,
        outputs_of: Mapping[str, Mapping[str, Any]],
        stage_writes: list[StageRecord],
    ) -> _Active:
        stage = self.stages[name]
        upstream = {stage.local_name(dep): outputs_of[dep] for dep in stage.depends_on}
        temp, scratch = self.resources.stage_paths(name)
        context = StageContext(
            run_id=run.run_id,
            stage=name,
            attempt=attempt,
            inputs=run.inputs,
            upstream=upstream,
            temp_path=temp,
            scratch_path=scratch,
        )
        now = time.time()
        record = StageRecord(
            run_id=run.run_id,
            stage=name,
            attempt=attempt,
            status=StageStatus.RUNNING,
            mode=stage.mode,
            started_at=now,
            inputs=upstream,
        )
        stage_writes.append(record)
        deadline = None
        if stage.timeout is not None and stage.mode != "subprocess":
            deadline = now + stage.timeout
        return _Active(
            stage=stage, attempt=attempt, record=record, context=context, deadline=deadline
        )

    def _submit(self, token: int, item: _Active) -> None:
        events = self._events
        stage = item.stage
        future: Future[Any]
        in_process = stage.mode == "direct" or (
            stage.mode == "distributed" and self.executor is None
        )
        if in_process and stage.timeout is not None:
            # A stage that may be abandoned gets a daemon thread of its own: Python cannot
            # kill a thread, and a pool thread would hold the interpreter open at exit.
            threading.Thread(
                target=self._run_on_own_thread,
                args=(token, item),
                name=f"stepkit-{stage.name}",
                daemon=True,
            ).start()
            return
        if stage.mode == "direct":
            future = self._pool.submit(run_direct, stage, item.context)
        elif stage.mode == "subprocess":
            future = self._pool.submit(
                run_subprocess,
                stage,
                item.context,
                processes=self._processes,
                sink=lambda batch: events.put(("logs", batch)),
            )
        else:
            executor = self.executor or self._pool
            future = executor.submit(run_in_worker, stage.target, item.context.to_payload())
        item.future = future
        future.add_done_callback(lambda done: events.put(("done", token, done)))

    def _run_on_own_thread(self, token: int, item: _Active) -> None:
        started = time.time()
        try:
            if item.stage.mode == "direct":
                outcome = run_direct(item.stage, item.context)
            else:
                report = run_in_worker(item.stage.target, item.context.to_payload())
                outcome = outcome_from_report(item.stage.name, report)
        except BaseException as exc:  # reported to the runner, which records it
            outcome = failure(exc, started_at=started)
        self._events.put(("done", token, outcome))

    def _outcome(self, item: _Active, future: Future[Any] | Outcome) -> Outcome:
        if isinstance(future, Outcome):
            return future
        started = item.record.started_at or time.time()
        if future.cancelled():
            return failure(KeyboardInterrupt("cancelled"), started_at=started)
        error = future.exception()
        if error is not None:
            return failure(error, started_at=started)
        value = future.result()
        if isinstance(value, Outcome):
            return value
        return outcome_from_report(item.stage.name, value)

    def _abandon(self, item: _Active) -> None:
        """A timed-out attempt: its thread (its own daemon thread, or the executor's worker)
        cannot be killed, so it is left to finish; its result will be ignored."""
        if item.future is not None:
            item.future.cancel()

    def _record(
        self,
        run: RunRecord,
        item: _Active,
        outcome: Outcome,
        stage_writes: list[StageRecord],
        outputs_of: dict[str, Mapping[str, Any]],
        retry_heap: list[tuple[float, int, str, int]],
        finish: Any,
        histogram: Any,
        retry_counter: Any,
        failure_counter: Any,
    ) -> int:
        """Record a finished attempt; schedule a retry or make it final. Returns retries."""
        name = item.stage.name
        self.resources.release_stage(name)
        duration = outcome.finished_at - (item.record.started_at or outcome.started_at)
        attrs = {"stage": name}
        histogram.record(duration, attrs)
        if outcome.ok:
            outputs = outcome.outputs or {}
            record = replace(
                item.record,
                status=StageStatus.CACHED if outcome.cached else StageStatus.COMPLETED,
                finished_at=outcome.finished_at,
                duration=duration,
                outputs=outputs,
                cpu_time=outcome.cpu_time,
                peak_rss=outcome.peak_rss,
            )
            stage_writes.append(record)
            outputs_of[name] = outputs
            self._log.info(
                "stage_completed",
                run_id=run.run_id,
                stage=name,
                attempt=item.attempt,
                duration=duration,
                status=str(record.status),
            )
            finish(name, record)
            return 0
        error = outcome.error
        assert error is not None
        timed_out = isinstance(error, StageTimeoutError)
        record = replace(
            item.record,
            status=StageStatus.TIMED_OUT if timed_out else StageStatus.FAILED,
            finished_at=outcome.finished_at,
            duration=duration,
            error_type=type(error).__name__,
            error_message=str(error),
            traceback=outcome.traceback,
            cpu_time=outcome.cpu_time,
            peak_rss=outcome.peak_rss,
        )
        stage_writes.append(record)
        self._last_failure[name] = record
        delay = item.stage.retry.next_delay(item.attempt, error)
        if delay is not None:
            heapq.heappush(
                retry_heap, (time.time() + delay, next(self._tokens), name, item.attempt + 1)
            )
            retry_counter.add(1, attrs)
            self._log.info(
                "stage_retried",
                run_id=run.run_id,
                stage=name,
                attempt=item.attempt,
                duration=duration,
                error=str(error),
                delay=delay,
            )
            return 1
        failure_counter.add(1, attrs)
        self._log.warning(
            "stage_failed",
            run_id=run.run_id,
            stage=name,
            attempt=item.attempt,
            duration=duration,
            error_type=type(error).__name__,
            error=str(error),
        )
        finish(name, record)
        return 0
