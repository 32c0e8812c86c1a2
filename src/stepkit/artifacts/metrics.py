"""The store's OpenTelemetry counters (no-ops until a ``MeterProvider`` is configured)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from stepkit.observability import get_meter

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter


@cache
def _counter(name: str, unit: str, description: str) -> Counter:
    return get_meter().create_counter(name, unit=unit, description=description)


def dedup_hits(count: int) -> None:
    """Objects that were already stored: the new bytes were dropped."""
    if count:
        _counter("dedup_hits_total", "1", "Finalized files whose content was already stored").add(
            count
        )


def bytes_stored(count: int) -> None:
    """Bytes of new objects written to the store."""
    if count:
        _counter("bytes_stored_total", "By", "Bytes of new objects stored").add(count)


def gc_removed(count: int) -> None:
    """Objects and temp files removed by gc."""
    if count:
        _counter("gc_removed_total", "1", "Objects and temp files removed by gc").add(count)


def verify_failures(count: int) -> None:
    """Problems verify found (missing, mismatch, unreadable)."""
    if count:
        _counter("verify_failures_total", "1", "Problems found by verify").add(count)
