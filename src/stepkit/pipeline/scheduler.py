"""Which stages may start, and when: the ready set in dependency order, and retry timing.

No I/O and no threads. The runner says what finished (a final record) or failed and waits
for another attempt; the scheduler answers what to start now, what can never run (skipped,
with the reason), and when the next retry is due.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from stepkit.pipeline.dag import DAG
from stepkit.pipeline.stage import Stage
from stepkit.state.records import StageRecord, StageStatus

_FAILED = (StageStatus.FAILED, StageStatus.TIMED_OUT)


class Start(NamedTuple):
    """An attempt the runner should start now (one per stage attempt: the cheapest record)."""

    stage: str
    attempt: int


@dataclass(order=True, frozen=True, slots=True)
class _Retry:
    due: float
    order: int  # ties broken by when the retry was asked for
    stage: str
    attempt: int


class Scheduler:
    """The ready set of one run. ``kept`` stages (completed before a resume) count as done
    without running; ``last_attempt`` continues attempt numbers across a resume."""

    def __init__(
        self,
        dag: DAG,
        stages: Mapping[str, Stage],
        *,
        run_id: str,
        kept: Mapping[str, StageRecord],
        last_attempt: Mapping[str, int],
    ) -> None:
        self._stages = stages
        self._run_id = run_id
        self._kept = kept
        self._last_attempt = last_attempt
        self._sorter = dag.ready_sorter()
        self._ready: deque[str] = deque(self._sorter.get_ready())
        self._retries: list[_Retry] = []
        self._order = itertools.count()
        self._last_failure: dict[str, StageRecord] = {}
        #: each finished stage's final record
        self.finals: dict[str, StageRecord] = {}
        #: outputs of every stage done so far (kept ones included), fed to dependents
        self.outputs: dict[str, Mapping[str, Any]] = {n: r.outputs for n, r in kept.items()}
        #: why nothing more starts (cancelled, fail_fast), once something said so
        self.stopping: str | None = None
        #: the first stage that failed for good
        self.first_failure: str | None = None

    @property
    def idle(self) -> bool:
        """Nothing is ready and no retry is waiting (running attempts aside)."""
        return not self._ready and not self._retries

    def next_retry_at(self) -> float | None:
        return self._retries[0].due if self._retries else None

    def finish(self, record: StageRecord) -> None:
        """``record`` is the stage's last word: its dependents may now be decided."""
        name = record.stage
        if record.status.done:
            self.outputs[name] = record.outputs
        elif record.status in _FAILED and self.first_failure is None:
            self.first_failure = name
        self.finals[name] = record
        self._sorter.done(name)
        self._ready.extend(self._sorter.get_ready())

    def retry_later(self, failed: StageRecord, *, due: float) -> None:
        """Try the stage again at ``due``; ``failed`` is final if the run stops first."""
        self._last_failure[failed.stage] = failed
        heapq.heappush(
            self._retries, _Retry(due, next(self._order), failed.stage, failed.attempt + 1)
        )

    def stop(self, reason: str) -> None:
        """Start nothing more: waiting retries end with their last failure, and every stage
        not started yet will be skipped with ``reason``."""
        self.stopping = reason
        while self._retries:
            self.finish(self._last_failure[heapq.heappop(self._retries).stage])

    def next_starts(self, *, now: float, free: int) -> tuple[list[Start], list[StageRecord]]:
        """Up to ``free`` attempts to start (due retries first), and the stages decided
        without running: skipped ones (returned, to be recorded) and kept ones."""
        starts: list[Start] = []
        skipped: list[StageRecord] = []
        while self._retries and self._retries[0].due <= now and len(starts) < free:
            retry = heapq.heappop(self._retries)
            starts.append(Start(retry.stage, retry.attempt))
        while self._ready:
            name = self._ready[0]
            if name in self._kept:
                self._ready.popleft()
                self.finish(self._kept[name])
                continue
            reason = self._blocker(name) or self.stopping
            if reason is not None:
                self._ready.popleft()
                record = StageRecord(
                    run_id=self._run_id,
                    stage=name,
                    attempt=self._last_attempt.get(name, 0) + 1,
                    status=StageStatus.SKIPPED,
                    mode=self._stages[name].mode,
                    finished_at=now,
                    reason=reason,
                )
                skipped.append(record)
                self.finish(record)
                continue
            if len(starts) >= free:
                break
            self._ready.popleft()
            starts.append(Start(name, self._last_attempt.get(name, 0) + 1))
        return starts, skipped

    def _blocker(self, name: str) -> str | None:
        for dep in self._stages[name].depends_on:
            record = self.finals.get(dep)
            if record is not None and not record.status.done:
                return f"upstream stage {dep!r} {record.status}"
        return None
