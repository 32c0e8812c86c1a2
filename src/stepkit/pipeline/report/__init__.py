"""The run report: one self-contained HTML page per run (``stepkit runs report``).

:func:`gather_report` reads what the state store (and the step cache) recorded;
:func:`render_report` draws it; :func:`report_page` does both.
"""

from __future__ import annotations

from stepkit.pipeline.report.data import CacheFacts, RunReport, gather_report
from stepkit.pipeline.report.page import render_report
from stepkit.state.base import StateRepository

__all__ = ["CacheFacts", "RunReport", "gather_report", "render_report", "report_page"]


def report_page(state: StateRepository, run_id: str, *, cache: CacheFacts | None = None) -> str:
    """The HTML page of ``run_id``."""
    return render_report(gather_report(state, run_id, cache=cache))
