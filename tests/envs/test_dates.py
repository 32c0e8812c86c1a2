"""The search for a date contemporary with the pins (uv's --exclude-newer)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from stepkit.envs.dates import Outcome, cutoff_dates, newest_working_date

TODAY = dt.date(2026, 12, 2)


def _window(first: dt.date, last: dt.date, tried: list[dt.date]) -> Callable[[dt.date], Outcome]:
    """A fake index: resolutions before ``first`` fail, after ``last`` do not import."""

    def probe(day: dt.date) -> Outcome:
        tried.append(day)
        if day < first:
            return Outcome.TOO_OLD
        if day > last:
            return Outcome.TOO_NEW
        return Outcome.WORKS

    return probe


def test_cutoffs_are_half_years_up_to_today() -> None:
    dates = cutoff_dates(today=dt.date(2017, 3, 1), earliest=dt.date(2016, 1, 1))
    assert dates == [dt.date(2016, 1, 1), dt.date(2016, 7, 1), dt.date(2017, 1, 1)]


def test_the_newest_date_that_works_is_found_in_few_tries() -> None:
    tried: list[dt.date] = []
    found = newest_working_date(
        _window(dt.date(2020, 12, 1), dt.date(2024, 6, 15), tried), today=TODAY
    )
    assert found == dt.date(2024, 1, 1)
    assert len(tried) <= 6


def test_a_window_older_than_the_middle_is_found() -> None:
    tried: list[dt.date] = []
    found = newest_working_date(
        _window(dt.date(2016, 3, 1), dt.date(2017, 2, 1), tried), today=TODAY
    )
    assert found == dt.date(2017, 1, 1)


def test_no_date_works() -> None:
    def never(day: dt.date) -> Outcome:
        return Outcome.TOO_NEW

    assert newest_working_date(never, today=TODAY) is None
