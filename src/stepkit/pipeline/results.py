"""What a run returns: its status and every stage's final result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stepkit.state.records import RunStatus, StageRecord, StageStatus


@dataclass(frozen=True, slots=True)
class StageResult:
    """A stage's last attempt: status, outputs (if it completed), error, why skipped."""

    stage: str
    status: StageStatus
    attempts: int
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    reason: str | None = None
    duration: float | None = None

    @classmethod
    def from_record(cls, record: StageRecord) -> StageResult:
        return cls(
            stage=record.stage,
            status=record.status,
            attempts=record.attempt,
            outputs=record.outputs,
            error_type=record.error_type,
            error_message=record.error_message,
            reason=record.reason,
            duration=record.duration,
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished (or stopped) run. ``outputs`` holds the outputs of the final stages (those
    nothing depends on), by stage; every stage's are in ``stages[name].outputs``."""

    run_id: str
    pipeline: str
    status: RunStatus
    stages: Mapping[str, StageResult]
    outputs: Mapping[str, Mapping[str, Any]]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.COMPLETED

    def by_status(self, status: StageStatus) -> list[str]:
        return [name for name, result in self.stages.items() if result.status == status]


class RunCancelled(KeyboardInterrupt):
    """Ctrl-C stopped a run: its stages were recorded ``cancelled`` before this was raised.

    A ``KeyboardInterrupt`` so that programs stop as they would on Ctrl-C; ``result`` says
    what had happened by then. The CLI turns it into exit status 130.
    """

    def __init__(self, result: RunResult) -> None:
        self.result = result
        super().__init__(f"run {result.run_id} cancelled")
