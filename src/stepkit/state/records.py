"""What the state store keeps: runs, stage attempts and log events, as small frozen records.

Every value in ``inputs`` and ``outputs`` is JSON-serializable (the runner checks before it
records), so every backend can store them as text and give back equal values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    CACHED = "cached"  # a cache hit: outputs recorded, nothing executed
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def done(self) -> bool:
        """Completed or cached: the outputs are recorded and a resume keeps them."""
        return self in (StageStatus.COMPLETED, StageStatus.CACHED)


#: Statuses a stage attempt can no longer leave.
FINAL_STAGE_STATUSES = frozenset(
    {
        StageStatus.COMPLETED,
        StageStatus.CACHED,
        StageStatus.FAILED,
        StageStatus.TIMED_OUT,
        StageStatus.SKIPPED,
        StageStatus.CANCELLED,
        StageStatus.INTERRUPTED,
    }
)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a pipeline. Times are Unix seconds; ``graph`` maps stage → dependencies.

    ``last_heartbeat`` is when a runner of the run last renewed its lease: the latest moment
    it was known alive, kept when a dead runner's lease is cleared.
    """

    run_id: str
    pipeline: str
    status: RunStatus
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    graph: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str | None = None  # "module:attr" that rebuilds the pipeline, when known
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    retries: int = 0
    host: str | None = None
    pid: int | None = None
    lease_expires_at: float | None = None
    last_heartbeat: float | None = None


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One attempt of one stage; a stage never attempted has attempt 0 (skipped, cancelled).

    ``last_heartbeat``, for an attempt found ``interrupted``, is its runner's last heartbeat
    before the reap (the run's own moves on once the run is resumed).
    """

    run_id: str
    stage: str
    attempt: int
    status: StageStatus
    mode: str = "direct"
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    reason: str | None = None  # why skipped / cancelled / interrupted
    cpu_time: float | None = None
    peak_rss: int | None = None  # bytes
    last_heartbeat: float | None = None


class LogEvent(NamedTuple):
    """One line a stage wrote (``stream`` is stdout or stderr) or one structured event.

    A named tuple rather than a dataclass: a stage can write millions of lines, and a tuple
    is the cheapest immutable record Python builds.
    """

    run_id: str
    stage: str
    attempt: int
    ts: float
    stream: str
    message: str
    seq: int = 0  # assigned by the store: increasing within a state file


def latest_attempts(records: list[StageRecord]) -> dict[str, StageRecord]:
    """The last attempt of every stage (records as the store returns them, oldest first)."""
    latest: dict[str, StageRecord] = {}
    for record in records:
        current = latest.get(record.stage)
        if current is None or record.attempt >= current.attempt:
            latest[record.stage] = record
    return latest


@dataclass(frozen=True, slots=True)
class LogBatch:
    """Lines one stage attempt wrote to one stream, read at time ``ts``: the unit in which
    logs are written (a stage can print millions of lines; a batch costs no object each)."""

    run_id: str
    stage: str
    attempt: int
    stream: str
    ts: float
    lines: Sequence[str]


@dataclass(frozen=True, slots=True)
class LogTail:
    """The end of what one attempt of a stage wrote: its last lines (both streams, oldest
    first) and how many lines it wrote in all."""

    events: tuple[LogEvent, ...]
    lines: int
