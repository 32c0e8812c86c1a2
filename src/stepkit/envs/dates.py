"""Finding a date contemporary with a step's pins, for uv's ``--exclude-newer``.

The rule: when today's resolution installs but does not import, resolve again as the
package index stood at an earlier date, and keep the newest date that works. The dates
tried are the first days of January and July from :data:`EARLIEST` to today, searched by
bisection: a resolution that does not import means "too new" (look earlier), one that
does not resolve at all means "too old" (the pins did not exist yet: look later). So at
most about six extra resolutions, using nothing but what uv fetches anyway — no release
dates are looked up, and the answer is reproducible because it is written in the lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import Enum
from typing import Final

#: The oldest cut-off tried: wheels for the interpreters stepkit supports start about then.
EARLIEST: Final = dt.date(2016, 1, 1)


class Outcome(Enum):
    """What a resolution as of one date did."""

    WORKS = "works"  # resolved, installed and imported
    TOO_NEW = "too_new"  # resolved and installed, but something does not import
    TOO_OLD = "too_old"  # did not resolve: a pin newer than the date


def cutoff_dates(*, today: dt.date, earliest: dt.date = EARLIEST) -> list[dt.date]:
    """The candidate cut-offs, oldest first: every 1 January and 1 July in the range."""
    dates: list[dt.date] = []
    for year in range(earliest.year, today.year + 1):
        for month in (1, 7):
            day = dt.date(year, month, 1)
            if earliest <= day < today:
                dates.append(day)
    return dates


def newest_working_date(
    probe: Callable[[dt.date], Outcome], *, today: dt.date, earliest: dt.date = EARLIEST
) -> dt.date | None:
    """The newest cut-off at which ``probe`` says the resolution works, or None."""
    dates = cutoff_dates(today=today, earliest=earliest)
    low, high = 0, len(dates) - 1
    best: dt.date | None = None
    while low <= high:
        middle = (low + high) // 2
        outcome = probe(dates[middle])
        if outcome is Outcome.WORKS:
            best = dates[middle]
            low = middle + 1
        elif outcome is Outcome.TOO_NEW:
            high = middle - 1
        else:
            low = middle + 1
    return best
