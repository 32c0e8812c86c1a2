"""What a report shows, read from the state store (and the step cache, when there is one).

Everything here is what was recorded; where the store does not record a fact the report
wants, the nearest recorded one stands in and says so (:attr:`AttemptView.alive_until`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stepkit.state.base import StateRepository
from stepkit.state.records import LogEvent, RunRecord, StageRecord, StageStatus, latest_attempts

#: Log lines kept per attempt: the end of what it wrote.
LOG_TAIL = 20
#: The output key where a catalogued node records what it is (see ``stepkit.plan.node``).
NODE_INFO = "_node"


class CacheEntryFacts(Protocol):
    """What the report reads from a step-cache entry (``stepkit.plan.cache.CacheEntry``)."""

    @property
    def run_id(self) -> str: ...
    @property
    def parts(self) -> Mapping[str, Any]: ...


class CacheFacts(Protocol):
    """A step cache, looked up by cache key (``stepkit.plan.cache.CacheStore`` is one)."""

    def get(self, cache_key: str) -> CacheEntryFacts | None: ...


@dataclass(frozen=True, slots=True)
class OutputView:
    """One recorded output of a stage: where it is and what it holds."""

    name: str
    path: str | None
    digest: str | None
    files: int | None
    size: int | None  # bytes


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One attempt, with the moment its runner was last known alive when it was interrupted.

    The store records the reap time as an interrupted attempt's end; ``alive_until`` is
    instead the latest sign of life of the dead runner before the reap: its last heartbeat
    (which the reap keeps on the attempt), a log line of the run, or another stage starting
    or ending (never earlier than the attempt's start)."""

    record: StageRecord
    tail: tuple[LogEvent, ...] = ()
    lines: int = 0  # log lines the attempt wrote in all
    alive_until: float | None = None

    @property
    def drawn_until(self) -> float | None:
        """Where its bar ends: the last sign of life for an interrupted attempt."""
        if self.alive_until is not None:
            return self.alive_until
        return self.record.finished_at


@dataclass(frozen=True, slots=True)
class StageView:
    """One stage of the run: its attempts, last outcome, outputs and where they came from."""

    name: str
    depends_on: tuple[str, ...]
    attempts: tuple[AttemptView, ...]
    outputs: tuple[OutputView, ...] = ()
    returned: Any = None
    step_seconds: float | None = None
    cache_key: str | None = None
    made_by_run: str | None = None  # for a cache hit: the run that made its outputs
    config: Mapping[str, Any] | None = None  # the config values its cache key was made of
    environment: Mapping[str, Any] = field(default_factory=dict)
    arguments: Mapping[str, Any] = field(default_factory=dict)

    @property
    def latest(self) -> StageRecord | None:
        return self.attempts[-1].record if self.attempts else None

    @property
    def status(self) -> str:
        return str(self.latest.status) if self.latest else "pending"


@dataclass(frozen=True, slots=True)
class RunReport:
    run: RunRecord
    stages: Mapping[str, StageView]  # in the run's graph order


def gather_report(
    state: StateRepository, run_id: str, *, cache: CacheFacts | None = None
) -> RunReport:
    """Everything the page shows about ``run_id``: one read of its records and its logs."""
    run = state.get_run(run_id)
    records = state.stage_records(run_id)
    by_stage: dict[str, list[StageRecord]] = {}
    for record in records:
        by_stage.setdefault(record.stage, []).append(record)
    tails = state.log_tails(run_id, size=LOG_TAIL)
    last_lines = [t.events[-1].ts for t in tails.values() if t.events]
    graph: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in run.graph.items()}
    for name in by_stage:
        graph.setdefault(name, ())
    latest = latest_attempts(records)
    stages: dict[str, StageView] = {}
    for name, deps in graph.items():
        attempts = tuple(
            AttemptView(
                record=r,
                tail=tails[(name, r.attempt)].events if (name, r.attempt) in tails else (),
                lines=tails[(name, r.attempt)].lines if (name, r.attempt) in tails else 0,
                alive_until=alive_until(r, records, last_lines),
            )
            for r in sorted(by_stage.get(name, ()), key=lambda r: r.attempt)
        )
        stages[name] = _stage_view(name, deps, attempts, latest.get(name), cache)
    return RunReport(run=run, stages=stages)


def _stage_view(
    name: str,
    deps: tuple[str, ...],
    attempts: tuple[AttemptView, ...],
    latest: StageRecord | None,
    cache: CacheFacts | None,
) -> StageView:
    if latest is None:
        return StageView(name=name, depends_on=deps, attempts=attempts)
    outputs = []
    info: Mapping[str, Any] = {}
    for key, ref in sorted(latest.outputs.items()):
        if key == NODE_INFO and isinstance(ref, Mapping):
            info = ref
        elif isinstance(ref, Mapping) and "path" in ref:
            outputs.append(
                OutputView(
                    name=key,
                    path=str(ref["path"]),
                    digest=_str_or_none(ref.get("digest")),
                    files=_int_or_none(ref.get("files")),
                    size=_int_or_none(ref.get("bytes")),
                )
            )
        else:  # a plain-function stage: its returned values are its outputs
            outputs.append(OutputView(name=key, path=None, digest=None, files=None, size=None))
    cache_key = _str_or_none(info.get("cache_key"))
    entry = cache.get(cache_key) if cache is not None and cache_key else None
    parts: Mapping[str, Any] = entry.parts if entry is not None else {}
    config = parts.get("config")
    values = config.get("values") if isinstance(config, Mapping) else None
    returned = info.get("returned") if info else None
    if not info and latest.status.done:
        returned = {k: v for k, v in latest.outputs.items()}
    return StageView(
        name=name,
        depends_on=deps,
        attempts=attempts,
        outputs=tuple(o for o in outputs if o.path is not None),
        returned=returned,
        step_seconds=_float_or_none(info.get("step_seconds")),
        cache_key=cache_key,
        made_by_run=entry.run_id if entry is not None else None,
        config=values if isinstance(values, Mapping) else None,
        environment=_mapping(parts.get("environment")),
        arguments=_mapping(parts.get("arguments")),
    )


def alive_until(
    record: StageRecord, records: Sequence[StageRecord], last_lines: Iterable[float]
) -> float | None:
    """For an interrupted attempt: the latest time its runner recorded anything before the
    reap (see :class:`AttemptView`), from the run's ``records`` and the times of its last
    log lines; None for any other attempt. ``runs show`` draws its timeline by it too."""
    if record.status != StageStatus.INTERRUPTED or record.started_at is None:
        return None
    reaped = record.finished_at
    if reaped is None:
        return record.started_at
    seen = [record.started_at]
    if record.last_heartbeat is not None and record.last_heartbeat < reaped:
        seen.append(record.last_heartbeat)
    for other in records:
        if other.status == StageStatus.INTERRUPTED:
            continue  # written by the reaper, not by the runner
        seen += [t for t in (other.started_at, other.finished_at) if t is not None and t < reaped]
    seen += [t for t in last_lines if t < reaped]
    return min(max(seen), reaped)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
