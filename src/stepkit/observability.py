"""Structured logs (structlog) and metrics (OpenTelemetry), set up once, lazily.

Without an exporter configured, OpenTelemetry's API hands out no-op instruments, so
recording a metric costs next to nothing; a user who configures a ``MeterProvider``
gets every counter and histogram stepkit records.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

_configured = False


def configure_logging(*, json: bool = True, level: int = logging.INFO) -> None:
    """Route structlog events to stderr, as JSON lines (or readable text for people)."""
    global _configured
    import structlog

    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True


_pending: dict[str, Any] = {"level": logging.WARNING}


def configure_logging_when_used(*, json: bool = True, level: int = logging.INFO) -> None:
    """:func:`configure_logging`, done when the first logger is asked for (now, if one
    was): a command that logs nothing never imports structlog."""
    global _pending
    _pending = {"json": json, "level": level}
    if _configured:
        configure_logging(json=json, level=level)


def get_logger(name: str) -> Any:
    """A structlog logger; configures JSON output on first use if nobody did."""
    import structlog

    if not _configured:
        configure_logging(**_pending)
    return structlog.get_logger(name)


@cache
def get_meter(name: str = "stepkit") -> Meter:
    """The OpenTelemetry meter stepkit records on (a no-op without a provider)."""
    from opentelemetry import metrics

    return metrics.get_meter(name)
