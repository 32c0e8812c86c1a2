"""The run loop: one run of a pipeline, its state written by this process alone.

Each turn gathers what workers reported (finished attempts, log batches), asks the
:class:`~stepkit.pipeline.scheduler.Scheduler` what runs next, commits all of it in ONE
transaction through the :class:`~stepkit.pipeline.recorder.Recorder`, and only then starts
the stages that became ready. So a stage counts as done only once its record is committed,
a dependent never starts before that, and the store sees one commit per turn — not one per
stage, let alone one per log line.

Off the path from a stage's end to its dependents' start: subprocess stages are handed to
spare children started ahead (:mod:`stepkit.pipeline.spares`; after each turn the runner
asks for one per stage that could become ready before anything else starts, its upstreams
all running or done, up to the number of workers); and what a stage keeps for later runs
(its ``keep``: a step node's cache entry) is done on a thread of its own once the turn has
committed the stage's completion, the run's end waiting for it.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from stepkit.errors import StageTimeoutError
from stepkit.observability import get_logger, get_meter
from stepkit.pipeline.context import StageContext
from stepkit.pipeline.dag import DAG
from stepkit.pipeline.executors import (
    Outcome,
    ProcessTable,
    failure,
    outcome_from_report,
    run_direct,
    run_subprocess,
    start_stage_child,
    warm_modules,
)
from stepkit.pipeline.invoke import run_in_worker
from stepkit.pipeline.orphans import AttemptProcesses
from stepkit.pipeline.recorder import Recorder
from stepkit.pipeline.resources import RunResources
from stepkit.pipeline.results import RunCancelled, RunResult, StageResult
from stepkit.pipeline.scheduler import Scheduler, Start
from stepkit.pipeline.settings import Progress, RunSettings
from stepkit.pipeline.spares import Spares
from stepkit.pipeline.stage import Stage
from stepkit.state.base import StateRepository
from stepkit.state.records import RunRecord, RunStatus, StageRecord, StageStatus


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
    """Runs the stages of one run; see :class:`RunSettings` for what the settings mean."""

    _run: RunRecord  # these three are set by execute(), for the run it executes
    _scheduler: Scheduler
    _recorder: Recorder
    _metrics: tuple[Any, Any, Any]

    def __init__(
        self,
        *,
        dag: DAG,
        stages: Mapping[str, Stage],
        state: StateRepository,
        settings: RunSettings,
        resources: RunResources,
        progress: Progress | None = None,
    ) -> None:
        self.dag = dag
        self.stages = stages
        self.state = state
        self.settings = settings
        self.resources = resources
        self.progress = progress
        self._workers = settings.workers
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="stepkit")
        self._processes = ProcessTable()
        self._spares = Spares(
            start_stage_child, warm=_common_warm(stages.values()), processes=self._processes
        )
        #: subprocess stages not started yet whose children a spare fits
        self._unstarted = {
            name
            for name, stage in stages.items()
            if stage.mode == "subprocess" and warm_modules(stage) == self._spares.warm
        }
        self._tokens = itertools.count(1)
        self._keeper: ThreadPoolExecutor | None = None  # started at the first stage's keep
        self._to_keep: list[tuple[str, Callable[[], None]]] = []  # committed this turn
        self._keeping: list[tuple[str, Future[None]]] = []
        self._active: dict[int, _Active] = {}
        self._cancelled = False
        self._retries = 0
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

        Raises:
            RunCancelled: Ctrl-C, after the run was recorded ``cancelled``.
        """
        self._run = run
        self._scheduler = Scheduler(
            self.dag, self.stages, run_id=run.run_id, kept=kept, last_attempt=last_attempt
        )
        self._recorder = Recorder(
            self.state, run, stages=tuple(self.dag.nodes), progress=self.progress
        )
        self._retries = run.retries
        # Bound per run (not at import), so logging and metrics set up later are honoured.
        self._log = get_logger("stepkit.pipeline")
        self._metrics = _instruments()
        self._recorder.started()
        interrupted = False
        while True:
            try:
                if not self._turn(lease_lost):
                    break
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                self._stop("run cancelled (interrupted)", cancelled=True)
        result = self._finish()
        if interrupted:
            raise RunCancelled(result)
        return result

    def _turn(self, lease_lost: threading.Event | None) -> bool:
        """One turn: decide, commit, start, then wait for news. False once all is final."""
        cancel = self.settings.cancel_event
        if cancel is not None and cancel.is_set() and not self._cancelled:
            self._stop("run cancelled", cancelled=True)
        if lease_lost is not None and lease_lost.is_set() and not self._recorder.lost:
            self._recorder.lost = True
            self._stop("lease lost: another runner took the run over", cancelled=True)
        scheduler = self._scheduler
        starts, skipped = scheduler.next_starts(
            now=time.time(), free=self._workers - len(self._active)
        )
        for record in skipped:
            self._recorder.stage(record)
            self._log.info(
                "stage_skipped", run_id=record.run_id, stage=record.stage, reason=record.reason
            )
        launches = [self._prepare(start) for start in starts]
        self._recorder.flush()  # everything learnt this turn, before anything new starts
        # The only stage that can run, direct and without a timeout, runs on this thread:
        # nothing else could start meanwhile, and it saves two thread hand-offs per stage
        # (most of a no-op stage's cost).
        inline = len(launches) == 1 and not self._active and scheduler.idle
        for item in launches:
            self._launch(item, inline=inline)
        self._keep_committed()
        if not self._active and scheduler.idle:
            return False
        self._spares.want(self._spares_wanted())
        self._collect(timeout=self._wait_seconds(lease_lost))
        self._expire(time.time())
        if self.settings.fail_fast and scheduler.first_failure and scheduler.stopping is None:
            self._stop(f"fail_fast: stage {scheduler.first_failure!r} failed", cancelled=False)
        return True

    def _stop(self, reason: str, *, cancelled: bool) -> None:
        """Start nothing more; what is running is cancelled (subprocess trees killed)."""
        self._cancelled = self._cancelled or cancelled
        self._processes.kill_all()
        now = time.time()
        for item in self._active.values():
            if item.future is not None:
                item.future.cancel()
            record = replace(
                item.record,
                status=StageStatus.CANCELLED,
                finished_at=now,
                duration=now - (item.record.started_at or now),
                reason=reason,
            )
            self._recorder.stage(record)
            self._scheduler.finish(record)
        self._active.clear()
        self._scheduler.stop(reason)

    def _keep_committed(self) -> None:
        """Start the ``keep`` of each stage whose completion this turn committed."""
        if not self._to_keep:
            return
        if self._keeper is None:
            self._keeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stepkit-keep")
        for name, keep in self._to_keep:
            self._keeping.append((name, self._keeper.submit(keep)))
        self._to_keep.clear()

    def _kept(self) -> None:
        """Wait for every stage's ``keep``; one that failed is logged (the stage's outputs
        are stored and recorded: only a later run's cache hit is lost)."""
        self._keep_committed()
        for name, future in self._keeping:
            error = future.exception()
            if error is not None:
                self._log.warning(
                    "stage_keep_failed",
                    run_id=self._run.run_id,
                    stage=name,
                    error_type=type(error).__name__,
                    error=str(error),
                )
        self._keeping.clear()

    def _spares_wanted(self) -> int:
        """Spares for the stages that could become ready before anything else starts: not
        started, their upstreams all running or done; no more than there are workers."""
        if self._scheduler.stopping is not None or not self._unstarted:
            return 0
        running = {item.stage.name for item in self._active.values()}
        finals = self._scheduler.finals
        self._unstarted -= running | finals.keys()
        count = sum(
            1
            for name in self._unstarted
            if all(dep in running or dep in finals for dep in self.stages[name].depends_on)
        )
        return min(count, self._workers)

    def _wait_seconds(self, lease_lost: threading.Event | None) -> float:
        """Until a deadline passes or a retry is due; short when there is a flag to watch."""
        now = time.time()
        wake = now + 1.0
        for item in self._active.values():
            if item.deadline is not None:
                wake = min(wake, item.deadline)
        retry_at = self._scheduler.next_retry_at()
        if retry_at is not None:
            wake = min(wake, retry_at)
        if self.settings.cancel_event is not None:
            wake = min(wake, now + 0.05)
        if lease_lost is not None:
            wake = min(wake, now + min(0.5, self.settings.lease_seconds / 3))
        return max(0.0, wake - now)

    def _collect(self, *, timeout: float) -> None:
        """Wait up to ``timeout`` for a worker's news, then take all that has arrived."""
        try:
            event: tuple[Any, ...] | None = self._events.get(timeout=timeout)
        except queue.Empty:
            return
        while event is not None:
            if event[0] == "logs":
                self._recorder.logs(event[1])
            else:
                found = self._active.pop(event[1], None)
                if found is not None:  # None: abandoned (timed out or cancelled)
                    self._record(found, self._outcome(found, event[2]))
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                event = None

    def _expire(self, now: float) -> None:
        """Attempts past their deadline (direct, distributed) fail as timed out."""
        if not self._active:
            return
        for token, item in list(self._active.items()):
            if item.deadline is not None and now >= item.deadline:
                del self._active[token]
                self._abandon(item)
                assert item.stage.timeout is not None
                error = StageTimeoutError(item.stage.name, item.stage.timeout, mode=item.stage.mode)
                self._record(item, failure(error, started_at=item.record.started_at or now))

    def _finish(self) -> RunResult:
        """Record the run's end (with the last log lines) and say how it went."""
        self._kept()
        # Lines a stopped stage wrote before it was killed are still worth keeping.
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event[0] == "logs":
                self._recorder.logs(event[1])
        finals = self._scheduler.finals
        status = RunStatus.COMPLETED
        if self._cancelled:
            status = RunStatus.CANCELLED
        elif any(not record.status.done for record in finals.values()):
            status = RunStatus.FAILED
        failed = [
            n for n, r in finals.items() if r.status in (StageStatus.FAILED, StageStatus.TIMED_OUT)
        ]
        error = f"stages failed: {', '.join(failed)}" if failed else self._scheduler.stopping
        ok = status == RunStatus.COMPLETED
        outputs = self._scheduler.outputs
        final_outputs = {name: dict(outputs.get(name, {})) for name in self.dag.sinks()}
        run = replace(
            self._run,
            status=status,
            outputs=final_outputs if ok else {},
            finished_at=time.time(),
            error=None if ok else error,
            retries=self._retries,
            lease_expires_at=None,
        )
        self._recorder.finish(run)
        return RunResult(
            run_id=run.run_id,
            pipeline=run.pipeline,
            status=status,
            stages={name: StageResult.from_record(finals[name]) for name in self.dag},
            outputs=final_outputs if ok else {},
            error=run.error,
        )

    def close(self) -> None:
        """Stop the worker pool without waiting for abandoned (timed-out) threads; no stage
        child or spare is left."""
        self._processes.kill_all()
        self._spares.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._keeper is not None:
            self._keeper.shutdown(wait=True)  # nothing writes to the cache after the run

    # -- one attempt -------------------------------------------------------------------------

    def _prepare(self, start: Start) -> _Active:
        """The attempt's context and its ``running`` record (committed before it starts)."""
        stage = self.stages[start.stage]
        outputs = self._scheduler.outputs
        upstream = {stage.local_name(dep): outputs[dep] for dep in stage.depends_on}
        temp, scratch = self.resources.stage_paths(stage.name)
        context = StageContext(
            run_id=self._run.run_id,
            stage=stage.name,
            attempt=start.attempt,
            inputs=self._run.inputs,
            upstream=upstream,
            temp_path=temp,
            scratch_path=scratch,
        )
        now = time.time()
        record = StageRecord(
            run_id=self._run.run_id,
            stage=stage.name,
            attempt=start.attempt,
            status=StageStatus.RUNNING,
            mode=stage.mode,
            started_at=now,
            inputs=upstream,
        )
        self._recorder.stage(record)
        deadline = None
        if stage.timeout is not None and stage.mode != "subprocess":
            deadline = now + stage.timeout
        return _Active(
            stage=stage, attempt=start.attempt, record=record, context=context, deadline=deadline
        )

    def _launch(self, item: _Active, *, inline: bool) -> None:
        self._log.info(
            "stage_started", run_id=self._run.run_id, stage=item.stage.name, attempt=item.attempt
        )
        token = next(self._tokens)
        self._active[token] = item
        if inline and item.stage.mode == "direct" and item.stage.timeout is None:
            self._events.put(("done", token, run_direct(item.stage, item.context)))
        else:
            self._submit(token, item)

    def _submit(self, token: int, item: _Active) -> None:
        events = self._events
        stage = item.stage
        future: Future[Any]
        in_process = stage.mode == "direct" or (
            stage.mode == "distributed" and self.settings.executor is None
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
            record = self.resources.process_record(stage.name, item.attempt)
            future = self._pool.submit(
                run_subprocess,
                stage,
                item.context,
                processes=AttemptProcesses(self._processes, record),
                sink=lambda batch: events.put(("logs", batch)),
                spare=self._spares.take(warm_modules(stage)),
            )
        else:
            executor = self.settings.executor or self._pool
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

    def _record(self, item: _Active, outcome: Outcome) -> None:
        """Record a finished attempt; schedule a retry or make it final."""
        histogram, retry_counter, failure_counter = self._metrics
        name = item.stage.name
        self.resources.release_stage(name)
        duration = outcome.finished_at - (item.record.started_at or outcome.started_at)
        attrs = {"stage": name}
        histogram.record(duration, attrs)
        if outcome.ok:
            record = replace(
                item.record,
                status=StageStatus.CACHED if outcome.cached else StageStatus.COMPLETED,
                finished_at=outcome.finished_at,
                duration=duration,
                outputs=outcome.outputs or {},
                cpu_time=outcome.cpu_time,
                peak_rss=outcome.peak_rss,
            )
            self._recorder.stage(record)
            if outcome.keep is not None:
                self._to_keep.append((name, outcome.keep))
            self._log.info(
                "stage_completed",
                run_id=record.run_id,
                stage=name,
                attempt=item.attempt,
                duration=duration,
                status=str(record.status),
            )
            self._scheduler.finish(record)
            return
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
        self._recorder.stage(record)
        delay = item.stage.retry.next_delay(item.attempt, error)
        if delay is not None and self._scheduler.stopping is None:
            self._scheduler.retry_later(record, due=time.time() + delay)
            self._retries += 1
            retry_counter.add(1, attrs)
            self._log.info(
                "stage_retried",
                run_id=record.run_id,
                stage=name,
                attempt=item.attempt,
                duration=duration,
                error=str(error),
                delay=delay,
            )
            return
        failure_counter.add(1, attrs)
        self._log.warning(
            "stage_failed",
            run_id=record.run_id,
            stage=name,
            attempt=item.attempt,
            duration=duration,
            error_type=type(error).__name__,
            error=str(error),
        )
        self._scheduler.finish(record)


def _common_warm(stages: Iterable[Stage]) -> tuple[str, ...]:
    """What the run's spares import ahead: what most of its subprocess stages' children
    would (a planned run's step nodes: all alike)."""
    found = Counter(warm_modules(stage) for stage in stages if stage.mode == "subprocess")
    return found.most_common(1)[0][0] if found else ()
