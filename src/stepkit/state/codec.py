"""Records to and from JSON-ready values: every backend stores the same representation."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from stepkit.state.records import RunRecord, RunStatus, StageRecord, StageStatus


def dumps(value: Mapping[str, Any]) -> str:
    """Compact, key-sorted JSON (so equal mappings store as equal text)."""
    if not value:
        return "{}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> dict[str, Any]:
    if not text or text == "{}":
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def graph_dumps(graph: Mapping[str, tuple[str, ...]]) -> str:
    return json.dumps({k: list(v) for k, v in graph.items()}, separators=(",", ":"))


def graph_loads(text: str | None) -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in loads(text).items()}


# -- rows: the column order every SQL backend stores runs and attempts in -------------------


def run_row(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.pipeline,
        str(run.status),
        dumps(run.inputs),
        dumps(run.outputs),
        graph_dumps(run.graph),
        run.source,
        run.created_at,
        run.started_at,
        run.finished_at,
        run.error,
        run.retries,
        run.host,
        run.pid,
        run.lease_expires_at,
        run.last_heartbeat,
    )


def run_from_row(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        pipeline=row[1],
        status=RunStatus(row[2]),
        inputs=loads(row[3]),
        outputs=loads(row[4]),
        graph=graph_loads(row[5]),
        source=row[6],
        created_at=row[7],
        started_at=row[8],
        finished_at=row[9],
        error=row[10],
        retries=row[11],
        host=row[12],
        pid=row[13],
        lease_expires_at=row[14],
        last_heartbeat=row[15],
    )


def stage_row(stage: StageRecord) -> tuple[Any, ...]:
    return (
        stage.run_id,
        stage.stage,
        stage.attempt,
        str(stage.status),
        stage.mode,
        stage.started_at,
        stage.finished_at,
        stage.duration,
        dumps(stage.inputs),
        dumps(stage.outputs),
        stage.error_type,
        stage.error_message,
        stage.traceback,
        stage.reason,
        stage.cpu_time,
        stage.peak_rss,
        stage.last_heartbeat,
    )


def stage_from_row(row: Sequence[Any]) -> StageRecord:
    return StageRecord(
        run_id=row[0],
        stage=row[1],
        attempt=row[2],
        status=StageStatus(row[3]),
        mode=row[4],
        started_at=row[5],
        finished_at=row[6],
        duration=row[7],
        inputs=loads(row[8]),
        outputs=loads(row[9]),
        error_type=row[10],
        error_message=row[11],
        traceback=row[12],
        reason=row[13],
        cpu_time=row[14],
        peak_rss=row[15],
        last_heartbeat=row[16],
    )
