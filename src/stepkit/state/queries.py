"""The read queries both SQL backends share, and the read methods built on them, written
once.

SQLite and PostgreSQL differ here only in the parameter placeholder (``?`` / ``%s``) and
the column that keeps insertion order (``rowid`` / ``id``); each backend passes its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from stepkit.errors import RecordsUnreadableError, UnknownRunError
from stepkit.state import codec
from stepkit.state.records import LogEvent

if TYPE_CHECKING:
    from stepkit.state.records import LogTail, RunRecord, RunStatus, StageRecord

RUN_COLUMNS = (
    "run_id, pipeline, status, inputs, outputs, graph, source, created_at, started_at, "
    "finished_at, error, retries, host, pid, lease_expires_at, last_heartbeat"
)
STAGE_COLUMNS = (
    "run_id, stage, attempt, status, mode, started_at, finished_at, duration, inputs, outputs, "
    "error_type, error_message, traceback, reason, cpu_time, peak_rss, last_heartbeat"
)

Query = tuple[str, list[Any]]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Dialect:
    placeholder: str  # "?" or "%s"
    order_key: str  # "rowid" or "id"

    def list_runs(self, *, status: str | None, pipeline: str | None, limit: int | None) -> Query:
        p = self.placeholder
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append(f"status = {p}")
            params.append(status)
        if pipeline is not None:
            where.append(f"pipeline = {p}")
            params.append(pipeline)
        sql = f"SELECT {RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, {self.order_key} DESC"
        if limit is not None:
            sql += f" LIMIT {p}"
            params.append(limit)
        return sql, params

    def stage_records(self, run_id: str) -> Query:
        p = self.placeholder
        return (
            f"SELECT {STAGE_COLUMNS} FROM stage_attempts WHERE run_id = {p} "
            f"ORDER BY {self.order_key}",
            [run_id],
        )

    def logs(self, run_id: str, *, stage: str | None, after: int, limit: int | None) -> Query:
        p = self.placeholder
        sql = (
            "SELECT s.run_id, s.stage, s.attempt, e.ts, s.stream, e.message, e.seq "
            "FROM log_events e JOIN log_streams s ON e.stream_id = s.id "
            f"WHERE s.run_id = {p} AND e.seq > {p}"
        )
        params: list[Any] = [run_id, after]
        if stage is not None:
            sql += f" AND s.stage = {p}"
            params.append(stage)
        sql += " ORDER BY e.seq"
        if limit is not None:
            sql += f" LIMIT {p}"
            params.append(limit)
        return sql, params

    def log_streams(self, run_id: str) -> Query:
        """Each stream of a run, with the count of lines it holds (kept as they are written)."""
        p = self.placeholder
        return (
            f"SELECT id, stage, attempt, stream, lines FROM log_streams WHERE run_id = {p} "
            "ORDER BY id",
            [run_id],
        )

    def stream_tail(self, stream_id: int, *, size: int) -> Query:
        """The newest ``size`` events of one stream, newest first (its (stream_id, seq)
        index read backwards)."""
        p = self.placeholder
        return (
            f"SELECT ts, message, seq FROM log_events WHERE stream_id = {p} "
            f"ORDER BY seq DESC LIMIT {p}",
            [stream_id, size],
        )

    def count_logs(self, run_id: str, *, stage: str | None) -> Query:
        p = self.placeholder
        sql = f"SELECT coalesce(sum(lines), 0) FROM log_streams WHERE run_id = {p}"
        params: list[Any] = [run_id]
        if stage is not None:
            sql += f" AND stage = {p}"
            params.append(stage)
        return sql, params


SQLITE = Dialect(placeholder="?", order_key="rowid")
POSTGRES = Dialect(placeholder="%s", order_key="id")


class SQLReads(ABC):
    """The read side of a SQL state repository: a backend names its :class:`Dialect` and
    how it runs a query (its own lock, its own error translation)."""

    dialect: Dialect

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of a read query."""

    @property
    @abstractmethod
    def where(self) -> str:
        """The store as messages name it (``state store /p/state.db``)."""

    def _decoded(self, what: str, decode: Callable[[Any], _T], rows: list[Any]) -> list[_T]:
        """``decode`` of every row, or one error saying which records cannot be read."""
        try:
            return [decode(row) for row in rows]
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # bad JSON, bad status
            raise RecordsUnreadableError(self.where, what, f"{type(exc).__name__}: {exc}") from exc

    def get_run(self, run_id: str) -> RunRecord:
        p = self.dialect.placeholder
        rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = {p}", (run_id,))
        if not rows:
            known = [r[0] for r in self._query("SELECT run_id FROM runs", ())]
            raise UnknownRunError(run_id, known)
        return self._decoded(f"The record of run {run_id}", codec.run_from_row, rows[:1])[0]

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        sql, params = self.dialect.list_runs(
            status=str(status) if status is not None else None, pipeline=pipeline, limit=limit
        )
        return self._decoded("The run records", codec.run_from_row, self._query(sql, params))

    def stage_records(self, run_id: str) -> list[StageRecord]:
        sql, params = self.dialect.stage_records(run_id)
        rows = self._query(sql, params)
        return self._decoded(f"The stage records of run {run_id}", codec.stage_from_row, rows)

    def logs(
        self,
        run_id: str,
        *,
        stage: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[LogEvent]:
        sql, params = self.dialect.logs(run_id, stage=stage, after=after, limit=limit)
        rows = self._query(sql, params)
        return self._decoded(f"The log lines of run {run_id}", LogEvent._make, rows)

    def count_logs(self, run_id: str, *, stage: str | None = None) -> int:
        sql, params = self.dialect.count_logs(run_id, stage=stage)
        rows = self._query(sql, params)
        return int(rows[0][0]) if rows else 0

    def log_tails(self, run_id: str, *, size: int) -> dict[tuple[str, int], LogTail]:
        from stepkit.state.records import LogTail

        streams: dict[tuple[str, int], list[tuple[int, str, int]]] = {}
        for stream_id, stage, attempt, stream, count in self._query(
            *self.dialect.log_streams(run_id)
        ):
            streams.setdefault((stage, attempt), []).append((stream_id, stream, count))
        found: dict[tuple[str, int], LogTail] = {}
        for (stage, attempt), ids in streams.items():
            events: list[LogEvent] = []
            lines = 0
            for stream_id, stream, count in ids:
                sql, params = self.dialect.stream_tail(stream_id, size=size)
                events += [
                    LogEvent(run_id, stage, attempt, ts, stream, message, seq)
                    for ts, message, seq in self._query(sql, params)
                ]
                lines += int(count)
            if lines:
                events.sort(key=lambda e: e.seq)
                found[(stage, attempt)] = LogTail(tuple(events[-size:]), lines)
        return found
