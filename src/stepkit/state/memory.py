"""An in-memory :class:`StateRepository` for tests and throw-away runs.

Values go through the same JSON codec as SQLite's, so both backends give back equal
records and the contract suite holds for both.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from stepkit.errors import UnknownRunError
from stepkit.state import codec
from stepkit.state.records import (
    LogBatch,
    LogEvent,
    LogTail,
    RunRecord,
    RunStatus,
    StageRecord,
    StageStatus,
)


class MemoryStateRepository:
    """Runs, attempts and logs in dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._stages: dict[tuple[str, str, int], StageRecord] = {}
        self._logs: list[LogEvent] = []
        self._closed = False

    def commit(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        stages: Sequence[StageRecord] = (),
        logs: Sequence[LogBatch] = (),
    ) -> None:
        # Encode everything first, so a value that cannot be stored changes nothing.
        new_runs = [_roundtrip_run(run) for run in runs]
        new_stages = [_roundtrip_stage(stage) for stage in stages]
        with self._lock:
            self._check_open()
            for run in new_runs:
                self._runs[run.run_id] = _kept_heartbeat(run, self._runs.get(run.run_id))
            for stage in new_stages:
                self._stages[(stage.run_id, stage.stage, stage.attempt)] = stage
            for batch in logs:
                seq = len(self._logs)
                self._logs.extend(
                    LogEvent(
                        batch.run_id,
                        batch.stage,
                        batch.attempt,
                        batch.ts,
                        batch.stream,
                        line,
                        seq + offset + 1,
                    )
                    for offset, line in enumerate(batch.lines)
                )

    def claim_run(self, run: RunRecord) -> bool:
        stored = _roundtrip_run(run)
        with self._lock:
            self._check_open()
            current = self._runs.get(run.run_id)
            if current is not None and current.status == RunStatus.RUNNING:
                return False
            self._runs[run.run_id] = _kept_heartbeat(stored, current)
            return True

    def interrupt_run(self, seen: RunRecord, *, now: float, reason: str) -> bool:
        with self._lock:
            self._check_open()
            run = self._runs.get(seen.run_id)
            if run is None or (run.status, run.lease_expires_at, run.pid, run.host) != (
                RunStatus.RUNNING,
                seen.lease_expires_at,
                seen.pid,
                seen.host,
            ):
                return False
            self._runs[run.run_id] = replace(
                run,
                status=RunStatus.INTERRUPTED,
                finished_at=now,
                error=reason,
                lease_expires_at=None,
            )
            for key, stage in self._stages.items():
                if stage.run_id == run.run_id and stage.status == StageStatus.RUNNING:
                    self._stages[key] = replace(
                        stage,
                        status=StageStatus.INTERRUPTED,
                        finished_at=now,
                        reason=reason,
                        last_heartbeat=run.last_heartbeat,
                    )
            return True

    def renew_lease(self, run_id: str, *, expires_at: float, now: float) -> bool:
        with self._lock:
            self._check_open()
            run = self._runs.get(run_id)
            if run is None or run.status != RunStatus.RUNNING:
                return False
            self._runs[run_id] = replace(run, lease_expires_at=expires_at, last_heartbeat=now)
            return True

    def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            self._check_open()
            run = self._runs.get(run_id)
            if run is None:
                raise UnknownRunError(run_id, self._runs)
            return run

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        with self._lock:
            self._check_open()
            runs = [
                run
                for run in reversed(self._runs.values())
                if (status is None or run.status == status)
                and (pipeline is None or run.pipeline == pipeline)
            ]
        runs.sort(key=lambda run: run.created_at, reverse=True)
        return runs[:limit] if limit is not None else runs

    def stage_records(self, run_id: str) -> list[StageRecord]:
        with self._lock:
            self._check_open()
            found = [record for key, record in self._stages.items() if key[0] == run_id]
        return found

    def logs(
        self,
        run_id: str,
        *,
        stage: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[LogEvent]:
        with self._lock:
            self._check_open()
            found = [
                event
                for event in self._logs[after:]
                if event.run_id == run_id and (stage is None or event.stage == stage)
            ]
        return found[:limit] if limit is not None else found

    def count_logs(self, run_id: str, *, stage: str | None = None) -> int:
        return len(self.logs(run_id, stage=stage))

    def log_tails(self, run_id: str, *, size: int) -> dict[tuple[str, int], LogTail]:
        written: dict[tuple[str, int], list[LogEvent]] = {}
        for event in self.logs(run_id):
            written.setdefault((event.stage, event.attempt), []).append(event)
        return {key: LogTail(tuple(lines[-size:]), len(lines)) for key, lines in written.items()}

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("state repository is closed")


def _roundtrip_run(run: RunRecord) -> RunRecord:
    return replace(
        run,
        status=RunStatus(run.status),
        inputs=codec.loads(codec.dumps(run.inputs)),
        outputs=codec.loads(codec.dumps(run.outputs)),
        graph=codec.graph_loads(codec.graph_dumps(run.graph)),
    )


def _roundtrip_stage(stage: StageRecord) -> StageRecord:
    return replace(
        stage,
        inputs=codec.loads(codec.dumps(stage.inputs)),
        outputs=codec.loads(codec.dumps(stage.outputs)),
    )


def _kept_heartbeat(new: RunRecord, stored: RunRecord | None) -> RunRecord:
    """``new``, its ``last_heartbeat`` never behind the stored one (as the SQL stores do)."""
    older = stored.last_heartbeat if stored is not None else None
    beats = [beat for beat in (new.last_heartbeat, older) if beat is not None]
    return replace(new, last_heartbeat=max(beats)) if beats else new
