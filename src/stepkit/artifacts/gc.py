"""Garbage collection: orphans found by digest, age-based retention, dry run by default.

An object is an orphan when no catalog record names its digest — compared as digests, so
the spelling of the root (relative, symlinked) cannot make a live object look dead. An
object or temp file changed within the grace period is never collected (a finalize may be
about to record it). The scan runs under the shared store lock, beside finalizes; ``apply``
then takes the lock exclusively (a bounded wait) only to delete, and first asks the
catalog again which of the doomed digests are live now. Records go first, in one
transaction; files after, so a crash in between leaves orphans for the next gc, never a
record without its bytes.

``apply`` refuses (``force`` overrides) when the catalog looks wrong rather than empty: it
fails SQLite's integrity check, or it knows no object while the store holds some — what an
emptied or restored-from-nothing catalog looks like, and gc would delete every object.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.artifacts import metrics
from stepkit.artifacts.layout import remove as remove_layout
from stepkit.artifacts.lock import store_lock
from stepkit.artifacts.records import ArtifactRecord
from stepkit.errors import GcRefusedError

if TYPE_CHECKING:
    from stepkit.artifacts.parts import StoreParts


@dataclass(frozen=True, slots=True)
class Doomed:
    """A file gc removes (or would remove)."""

    path: Path | str  # a URL for an object of a remote store
    bytes: int
    sha256: str | None  # None: a temp file


@dataclass(slots=True)
class GcReport:
    """What gc removed, or with ``applied=False`` what it would remove."""

    applied: bool
    objects: list[Doomed] = field(default_factory=list)
    temp_files: list[Doomed] = field(default_factory=list)
    records: list[ArtifactRecord] = field(default_factory=list)
    kept_in_grace: int = 0

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.objects) + sum(d.bytes for d in self.temp_files)


#: How long ``apply`` waits for finalizes to let go of the store lock before giving up.
LOCK_TIMEOUT_SECONDS = 60.0


def collect(
    store: StoreParts,
    *,
    apply: bool = False,
    older_than: timedelta | None = None,
    keep_last: int = 1,
    grace: timedelta,
    force: bool = False,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> GcReport:
    """Find orphans (and, with ``older_than``, records past retention); remove if ``apply``.

    Retention drops records created more than ``older_than`` ago, except the newest
    ``keep_last`` versions of every (artifact_id, source, producer).
    """
    _check_arguments(older_than=older_than, keep_last=keep_last, grace=grace)
    with store_lock(store.root, exclusive=False):
        report, records = _scan(store, older_than=older_than, keep_last=keep_last, grace=grace)
    if not apply:
        return report
    if not force:
        _refuse_if_suspect(store, records=records, report=report)
    with store_lock(store.root, exclusive=True, timeout=lock_timeout):
        _apply(store, report)
    return report


def _check_arguments(*, older_than: object, keep_last: object, grace: object) -> None:
    """Misuse said as such, not as an AttributeError from deep inside."""
    if not isinstance(grace, timedelta):
        raise TypeError(f"grace must be a datetime.timedelta, got {grace!r}")
    if older_than is not None and not isinstance(older_than, timedelta):
        raise TypeError(f"older_than must be a datetime.timedelta or None, got {older_than!r}")
    if not isinstance(keep_last, int) or isinstance(keep_last, bool):
        raise TypeError(f"keep_last must be an int, got {keep_last!r}")
    if keep_last < 0:
        raise ValueError(f"keep_last must be >= 0, got {keep_last}")
    if grace < timedelta(0):
        raise ValueError(f"grace must not be negative, got {grace}")


def _refuse_if_suspect(
    store: StoreParts, *, records: list[ArtifactRecord], report: GcReport
) -> None:
    problems = store.catalog.integrity_problems()
    if problems:
        raise GcRefusedError(
            f"the catalog fails its integrity check ({problems[0]}); a damaged catalog may "
            "have lost the records of live objects"
        )
    if not records and report.objects:
        held = len(report.objects) + report.kept_in_grace
        raise GcRefusedError(
            f"the catalog knows no object while the store holds {held}; an emptied or "
            "replaced catalog looks like this, and every object would be deleted"
        )


def _scan(
    store: StoreParts,
    *,
    older_than: timedelta | None,
    keep_last: int,
    grace: timedelta,
) -> tuple[GcReport, list[ArtifactRecord]]:
    report = GcReport(applied=False)
    records = list(store.catalog.records())
    report.records = _past_retention(records, older_than=older_than, keep_last=keep_last)
    dropped = {r.id for r in report.records}
    live = {r.sha256 for r in records if r.id not in dropped}
    cutoff_ns = time.time_ns() - int(grace.total_seconds() * 1e9)
    for obj in store.blobs.iter_objects():
        if obj.sha256 in live:
            continue
        if obj.changed_ns > cutoff_ns:
            report.kept_in_grace += 1
            continue
        report.objects.append(Doomed(obj.path, obj.bytes, obj.sha256))
    for temp in store.local.iter_temp():  # a remote store's temp files are in its spool
        if temp.changed_ns > cutoff_ns:
            report.kept_in_grace += 1
        else:
            report.temp_files.append(Doomed(temp.path, temp.bytes, None))
    return report, records


def _apply(store: StoreParts, report: GcReport) -> None:
    """Delete what the scan found, under the exclusive lock, rechecking liveness first:
    finalizes ran beside the scan and may have recorded a doomed digest since."""
    report.applied = True
    if report.records:
        store.catalog.delete_records([r.id for r in report.records])
    remaining = list(store.catalog.records())
    live = {r.sha256 for r in remaining}
    live_layouts = {r.layout_path for r in remaining if r.layout_path}
    for layout in {r.layout_path for r in report.records if r.layout_path} - live_layouts:
        remove_layout(store.root, layout)
    removed = []
    for doomed in report.objects:
        assert doomed.sha256 is not None
        if doomed.sha256 in live:
            continue  # recorded since the scan
        # The lock is local; runners on other machines (a remote store) may have recorded
        # this digest since the listing: ask the catalog again right before deleting.
        if store.remote is not None and store.catalog.by_sha256(doomed.sha256):
            continue
        store.blobs.delete(doomed.sha256)
        removed.append(doomed)
    report.objects = removed
    for doomed in report.temp_files:
        Path(doomed.path).unlink(missing_ok=True)
    metrics.gc_removed(len(report.objects) + len(report.temp_files))


def _past_retention(
    records: list[ArtifactRecord], *, older_than: timedelta | None, keep_last: int
) -> list[ArtifactRecord]:
    if older_than is None:
        return []
    cutoff = (datetime.now(UTC) - older_than).isoformat(timespec="microseconds")
    by_key: dict[tuple[str, str, str], list[ArtifactRecord]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    doomed: list[ArtifactRecord] = []
    for versions in by_key.values():
        versions.sort(key=lambda r: r.version, reverse=True)
        doomed.extend(r for r in versions[keep_last:] if r.created_at < cutoff)
    return sorted(doomed, key=lambda r: r.id)


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``45m``, ``90s`` or ``2w`` as a timedelta (for ``--older-than``)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    text = text.strip()
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(f"Invalid age {text!r}: use a number and one of s, m, h, d, w (e.g. 30d).")
    return timedelta(**{units[unit]: int(number)})
