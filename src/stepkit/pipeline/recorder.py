"""The run's one writer: what a turn of the runner learnt, committed in one transaction.

Stage attempts and log batches are gathered during a turn and written together by
:meth:`Recorder.flush`; only after that commit does the runner start what became ready, so
a stage counts as done only once its record is durable. Each commit is then reported to
the run's ``progress`` callback, so a live view shows exactly what the store holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from stepkit.pipeline.settings import Progress, RunProgress
from stepkit.state.base import StateRepository
from stepkit.state.records import LogBatch, RunRecord, RunStatus, StageRecord


class Recorder:
    """Batches and commits the records of one run.

    Once ``lost`` is set (another runner reaped the run), nothing more is written: the
    run's records are whoever holds it now's to write.
    """

    def __init__(
        self,
        state: StateRepository,
        run: RunRecord,
        *,
        stages: tuple[str, ...],
        progress: Progress | None,
    ) -> None:
        self._state = state
        self._run_id = run.run_id
        self._pipeline = run.pipeline
        self._stage_names = stages
        self._progress = progress
        self._stages: list[StageRecord] = []
        self._logs: list[LogBatch] = []
        self.lost = False

    def stage(self, record: StageRecord) -> None:
        self._stages.append(record)

    def logs(self, batches: Iterable[LogBatch]) -> None:
        self._logs.extend(batches)

    def started(self) -> None:
        """Tell the progress callback the run has started (its run id, its stages)."""
        self._report((), RunStatus.RUNNING)

    def flush(self) -> None:
        """Commit everything gathered since the last flush, in one transaction."""
        if not (self._stages or self._logs):
            return
        stages = self._stages
        if not self.lost:
            self._state.commit(stages=stages, logs=self._logs)
        self._stages = []
        self._logs = []
        if self._progress is not None and not self.lost:
            self._report(tuple(stages), RunStatus.RUNNING)

    def finish(self, run: RunRecord) -> None:
        """The final commit: the run's own record with what is still gathered."""
        stages = self._stages
        if not self.lost:
            self._state.commit(runs=[run], stages=stages, logs=self._logs)
        self._stages = []
        self._logs = []
        if not self.lost:
            self._report(tuple(stages), run.status)

    def _report(self, records: tuple[StageRecord, ...], status: RunStatus) -> None:
        if self._progress is not None:
            self._progress(
                RunProgress(
                    run_id=self._run_id,
                    pipeline=self._pipeline,
                    stages=self._stage_names,
                    records=records,
                    status=status,
                )
            )
