"""The last lines each attempt of a stage wrote, found without reading the whole log.

A stage can write millions of lines, and the store answers only "lines after seq N, at
most M" (``StateRepository.logs``). A stage that wrote a few lines is read at once; for a
big one, the start of its last lines is found by bisecting on ``seq`` with small queries
(events of one stage come in ``seq`` order, and one attempt's lines all come before the
next attempt's): some twenty queries of a few rows each instead of a million rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stepkit.state.base import StateRepository
from stepkit.state.records import LogEvent

#: A stage with no more lines than this is read in one query.
READ_WHOLE = 2000


@dataclass(frozen=True, slots=True)
class Tail:
    """The end of one attempt's log, and how many lines it wrote when that is known."""

    events: tuple[LogEvent, ...]
    lines: int | None


def attempt_tails(
    state: StateRepository, run_id: str, stages: Iterable[tuple[str, Iterable[int]]], *, size: int
) -> dict[tuple[str, int], Tail]:
    """``(stage, attempt)`` → its last ``size`` lines, for every stage and its attempts."""
    found: dict[tuple[str, int], Tail] = {}
    end: list[int] = []  # past the run's last seq, found once when a big stage needs it
    for stage, attempts in stages:
        count = state.count_logs(run_id, stage=stage)
        if count == 0:
            continue
        numbers = sorted(set(attempts))
        if count <= READ_WHOLE:
            events = state.logs(run_id, stage=stage)
            for attempt in {e.attempt for e in events}:
                written = [e for e in events if e.attempt == attempt]
                found[(stage, attempt)] = Tail(tuple(written[-size:]), len(written))
            continue
        if not end:
            end.append(_past_last(state, run_id))
        bisect = _Bisect(state, run_id, stage)
        before = end[0]
        for attempt in reversed(numbers):
            last = bisect.last_before(before, size)
            mine = tuple(e for e in last if e.attempt == attempt)
            lines = count if len(numbers) == 1 else None
            if mine:
                found[(stage, attempt)] = Tail(mine, lines)
            if len(mine) < len(last) or not mine:
                before = mine[0].seq if mine else before
            else:
                before = bisect.first_of(attempt, before)
    return found


def _past_last(state: StateRepository, run_id: str) -> int:
    """A seq beyond the run's last log event (doubling until nothing comes after it)."""
    probe = 1024
    while state.logs(run_id, after=probe, limit=1):
        probe *= 2
    return probe + 1


class _Bisect:
    """Bisection on seq over one stage's events, with queries of a few rows."""

    def __init__(self, state: StateRepository, run_id: str, stage: str) -> None:
        self._state, self._run_id, self._stage = state, run_id, stage

    def _after(self, seq: int, limit: int, before: int) -> list[LogEvent]:
        page = self._state.logs(self._run_id, stage=self._stage, after=seq, limit=limit)
        return [e for e in page if e.seq < before]

    def last_before(self, before: int, size: int) -> list[LogEvent]:
        """The last ``size`` events with seq below ``before``."""
        if len(self._after(0, size + 1, before)) <= size:
            return self._after(0, size, before)
        low, high = 0, before  # at least `size` events after low; fewer after high
        while high - low > 1:
            mid = (low + high) // 2
            if len(self._after(mid, size, before)) >= size:
                low = mid
            else:
                high = mid
        return self._after(low, size, before)

    def first_of(self, attempt: int, before: int) -> int:
        """The seq of the first event of ``attempt`` (or a later one) below ``before``."""

        def reached(seq: int) -> bool:
            first = self._after(seq, 1, before)
            return not first or first[0].attempt >= attempt

        if reached(0):
            first = self._after(0, 1, before)
            return first[0].seq if first else before
        low, high = 0, before  # the first event after low is earlier; after high, not
        while high - low > 1:
            mid = (low + high) // 2
            if reached(mid):
                high = mid
            else:
                low = mid
        first = self._after(high, 1, before)
        return first[0].seq if first else before
