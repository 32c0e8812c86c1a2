"""The :class:`StateRepository` protocol: what the runner and the CLI need from a state store.

Small on purpose: one write method that commits runs, stage attempts and log lines together
in one transaction (the runner batches, the store never commits per line), and a few reads.
Every implementation passes the same contract suite (``tests/state/test_contract.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from stepkit.state.records import (
    LogBatch,
    LogEvent,
    LogTail,
    RunRecord,
    RunStatus,
    StageRecord,
)


@runtime_checkable
class StateRepository(Protocol):
    """Durable (or, for tests, in-memory) record of runs, stage attempts and log events."""

    def commit(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        stages: Sequence[StageRecord] = (),
        logs: Sequence[LogBatch] = (),
    ) -> None:
        """Write all of it in one transaction: runs and attempts are upserted by key
        (run id; run id + stage + attempt), log lines appended (each line becomes one
        :class:`LogEvent` with an increasing ``seq``). When this returns, it is
        durable; if it raises, none of it was written."""
        ...

    def claim_run(self, run: RunRecord) -> bool:
        """Write ``run`` (a running run) only if the stored run is not running: the atomic
        check that keeps two runners from resuming the same run. False if it was."""
        ...

    def interrupt_run(self, seen: RunRecord, *, now: float, reason: str) -> bool:
        """Mark the run and its still-running attempts ``interrupted`` (the attempts keep the
        run's ``last_heartbeat``; the run keeps it too, its lease cleared), only if the stored
        run is still exactly what ``seen`` was: running, same holder, same lease. The
        atomic check that keeps a reaper from overwriting a run another runner has just
        claimed or renewed. False (nothing written) if it changed."""
        ...

    def renew_lease(self, run_id: str, *, expires_at: float, now: float) -> bool:
        """The heartbeat: move a running run's lease to ``expires_at`` and record ``now`` as
        its ``last_heartbeat``; touches nothing else. False if the run is no longer running
        (someone reaped it)."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run, or :class:`~stepkit.errors.UnknownRunError` with close ids."""
        ...

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only one status or one pipeline."""
        ...

    def stage_records(self, run_id: str) -> list[StageRecord]:
        """Every attempt of every stage of a run, in the order they were first written."""
        ...

    def logs(
        self,
        run_id: str,
        *,
        stage: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[LogEvent]:
        """Log events of a run (one stage's, if given) with ``seq > after``, oldest first."""
        ...

    def count_logs(self, run_id: str, *, stage: str | None = None) -> int:
        """How many log events a run (or one of its stages) has."""
        ...

    def log_tails(self, run_id: str, *, size: int) -> dict[tuple[str, int], LogTail]:
        """(stage, attempt) → its last ``size`` lines and its line count, for every attempt
        of a run that wrote something (what a report shows; each read by its own index,
        never the whole log)."""
        ...

    def close(self) -> None:
        """Release the connection (if any); the repository is unusable afterwards."""
        ...
