"""Run state: the :class:`StateRepository` protocol and its SQLite, PostgreSQL and in-memory
stores (PostgreSQL is imported only when a ``postgresql://`` URL is opened)."""

from __future__ import annotations

from stepkit.state.backends import open_state, open_state_url
from stepkit.state.base import StateRepository
from stepkit.state.memory import MemoryStateRepository
from stepkit.state.records import LogBatch, LogEvent, RunRecord, RunStatus, StageRecord, StageStatus
from stepkit.state.sqlite import SQLiteStateRepository

__all__ = [
    "LogBatch",
    "LogEvent",
    "MemoryStateRepository",
    "RunRecord",
    "RunStatus",
    "SQLiteStateRepository",
    "StageRecord",
    "StageStatus",
    "StateRepository",
    "open_state",
    "open_state_url",
]
