"""The run report: one self-contained HTML page per run (``stepkit runs report``).

:func:`gather_report` reads what the state store (and the step cache) recorded;
:func:`render_report` draws it; :func:`report_page` does both. Names load on first use, so
the CLI's tables can share :func:`~stepkit.pipeline.report.units.format_duration` without
loading the page's drawing code.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepkit.pipeline.report.data import CacheFacts, RunReport, gather_report
    from stepkit.pipeline.report.page import render_report
    from stepkit.state.base import StateRepository

__all__ = ["CacheFacts", "RunReport", "gather_report", "render_report", "report_page"]

_EXPORTS = {
    "CacheFacts": "stepkit.pipeline.report.data",
    "RunReport": "stepkit.pipeline.report.data",
    "gather_report": "stepkit.pipeline.report.data",
    "render_report": "stepkit.pipeline.report.page",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def report_page(state: StateRepository, run_id: str, *, cache: CacheFacts | None = None) -> str:
    """The HTML page of ``run_id``."""
    from stepkit.pipeline.report.data import gather_report
    from stepkit.pipeline.report.page import render_report

    return render_report(gather_report(state, run_id, cache=cache))
