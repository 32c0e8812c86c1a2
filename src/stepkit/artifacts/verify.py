"""Verify: re-hash stored objects and check readable paths; report, never delete.

Each distinct object of the selected records is read and hashed again — a file modified in
place is caught even when read-only bits stopped nothing (as root). Readable paths must
still be the object (same inode) or, for a copy, hash to the same digest, and are checked
to stay inside the store root before anything is read through them. A full verify also
reports objects no record names (an emptied catalog shows up here, not as "0 objects
checked") and a catalog that fails SQLite's integrity check or cannot be read at all — the
damage is the report, never a crash.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stepkit.artifacts import metrics
from stepkit.artifacts.digest import hash_file, hash_stream, is_digest
from stepkit.artifacts.records import ArtifactRecord, utc_now
from stepkit.errors import StateStoreError, StorePermissionError

if TYPE_CHECKING:
    from stepkit.artifacts.items import Progress
    from stepkit.artifacts.parts import StoreParts

ProblemKind = Literal["missing", "mismatch", "unreadable", "unsafe", "orphan", "catalog"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing verify found wrong, with the records it affects."""

    kind: ProblemKind
    sha256: str
    path: Path | str  # a URL when the store is remote
    record_ids: tuple[int, ...]
    detail: str


@dataclass(slots=True)
class VerifyReport:
    """What verify checked and what it found."""

    checked_objects: int = 0
    checked_bytes: int = 0
    checked_records: int = 0
    ok: int = 0
    problems: list[Problem] = field(default_factory=list)
    verified_at: str = ""
    recorded: bool = True  # False: a read-only catalog; the results were not written back
    #: Objects no record names (a full verify only): gc's to collect, unless the catalog
    #: lost its records — which, when it names none at all, is reported as a problem too.
    orphans: list[Problem] = field(default_factory=list)
    #: Why the catalog itself looks wrong though every record checked out (``None``: not).
    suspect: str | None = None

    def count(self, kind: ProblemKind) -> int:
        return sum(1 for p in self.problems if p.kind == kind)


def verify(
    store: StoreParts,
    *,
    sample: int | None = None,
    since: str | None = None,
    on_progress: Progress | None = None,
) -> VerifyReport:
    """Re-hash the objects of every record (registered/updated at or after ``since``), or
    of a random ``sample`` of N objects; record when the good ones were verified."""
    report = VerifyReport(verified_at=utc_now())
    by_sha: dict[str, list[ArtifactRecord]] = defaultdict(list)
    try:
        for line in store.catalog.integrity_problems():
            report.problems.append(_catalog_problem(store, line))
        for record in store.catalog.records(since=since):
            by_sha[record.sha256].append(record)
    except StateStoreError as exc:  # damaged, foreign, unreadable: the catalog is the finding
        report.problems.append(_catalog_problem(store, str(exc)))
        return report
    digests = sorted(by_sha)
    if sample is not None and sample < len(digests):
        digests = sorted(random.sample(digests, sample))
    good: list[str] = []

    def check(sha256: str) -> Problem | None:
        problem = _check_object(store, sha256, by_sha[sha256])
        if problem is None:
            problem = _check_layouts(store, sha256, by_sha[sha256])
        if on_progress is not None:
            on_progress(by_sha[sha256][0].bytes)
        return problem

    # hashlib releases the GIL on large buffers: objects are hashed on every core.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        problems = list(pool.map(check, digests))
    for sha256, problem in zip(digests, problems, strict=True):
        records = by_sha[sha256]
        report.checked_records += len(records)
        report.checked_objects += 1
        if problem is None:
            report.ok += 1
            report.checked_bytes += records[0].bytes
            good.append(sha256)
        else:
            report.problems.append(problem)
    _quarantine(store, report)
    if sample is None and since is None:
        report.orphans = _orphans(store, set(by_sha))
        if report.orphans and not by_sha:
            report.suspect = (
                f"the catalog names no object while the store holds {len(report.orphans)}: "
                "if it was emptied or replaced, restore it before running gc"
            )
    try:
        if good:
            store.catalog.mark_verified(good, at=report.verified_at)
        store.catalog.set_meta("last_verify", report.verified_at)
    except StorePermissionError:  # a read-only catalog: the report stands, unrecorded
        report.recorded = False
    metrics.verify_failures(len(report.problems))
    return report


#: Where verify moves an object whose bytes no longer hash to its name (local stores).
QUARANTINE = "quarantine"


def _quarantine(store: StoreParts, report: VerifyReport) -> None:
    """Move each object found corrupt out of ``cas/`` into ``quarantine/`` (kept, never
    deleted): nothing serves its bytes any more — a cache hit naming it misses, and the
    next run that makes that content writes a sound object in its place."""
    corrupt = [
        p
        for p in report.problems
        if p.kind == "mismatch"
        and is_digest(p.sha256)
        and str(p.path).startswith(str(store.local.objects))
    ]
    if store.remote is not None or not corrupt:
        return
    from stepkit.artifacts.lock import store_lock
    from stepkit.errors import StoreLockTimeoutError

    folder = store.root / QUARANTINE
    try:
        folder.mkdir(exist_ok=True)
        # exclusive, briefly: no finalize is taking the object as a dedup hit meanwhile
        with store_lock(store.root, exclusive=True, timeout=10):
            for index, problem in enumerate(report.problems):
                if problem not in corrupt:
                    continue
                target = folder / f"{problem.sha256}.{report.verified_at.replace(':', '')}"
                _unlink_links(store, problem.sha256, os.stat(problem.path))
                os.replace(problem.path, target)
                report.problems[index] = Problem(
                    problem.kind,
                    problem.sha256,
                    problem.path,
                    problem.record_ids,
                    f"{problem.detail}; moved to {target.relative_to(store.root)}",
                )
    except (OSError, StoreLockTimeoutError):  # read-only, or busy: reported, left in place
        return


def _unlink_links(store: StoreParts, sha256: str, obj: os.stat_result) -> None:
    """Remove the readable paths that are hard links of a corrupt object (the same bytes,
    kept in quarantine): a reader of an old run's folder must not get them either."""
    root = os.path.realpath(store.root) + os.sep
    for record in store.catalog.by_sha256(sha256):
        if not record.layout_path:
            continue
        path = os.path.normpath(os.path.join(store.root, record.layout_path))
        if not os.path.realpath(path).startswith(root):
            continue
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if (info.st_dev, info.st_ino) == (obj.st_dev, obj.st_ino):
            os.unlink(path)


def _catalog_problem(store: StoreParts, detail: str) -> Problem:
    where = getattr(store.catalog, "path", None) or repr(store.catalog)
    return Problem("catalog", "", where, (), detail)


def _orphans(store: StoreParts, named: set[str]) -> list[Problem]:
    """Objects in the store that no record names (gc collects them; a great many of them
    beside few records means the catalog lost its records)."""
    return [
        Problem("orphan", obj.sha256, obj.path, (), "no record names this object")
        for obj in store.blobs.iter_objects()
        if obj.sha256 is not None and obj.sha256 not in named
    ]


def _check_object(store: StoreParts, sha256: str, records: list[ArtifactRecord]) -> Problem | None:
    ids = tuple(r.id for r in records)
    if not is_digest(sha256):  # a row written by something else; never build a path from it
        return Problem("mismatch", sha256, store.root, ids, "catalog holds an invalid digest")
    path = store.location_of(sha256)
    try:
        if store.remote is None:
            actual, size = hash_file(store.local.path(sha256))
        else:
            with store.remote.open(sha256) as handle:
                actual, size = hash_stream(handle)
    except FileNotFoundError:
        return Problem("missing", sha256, path, ids, "object file is missing")
    except OSError as exc:
        return Problem("unreadable", sha256, path, ids, f"{type(exc).__name__}: {exc.strerror}")
    if actual != sha256:
        return Problem("mismatch", sha256, path, ids, f"content hashes to {actual} ({size} bytes)")
    if size != records[0].bytes:
        return Problem(
            "mismatch", sha256, path, ids, f"{size} bytes, catalog says {records[0].bytes}"
        )
    return None


def _check_layouts(store: StoreParts, sha256: str, records: list[ArtifactRecord]) -> Problem | None:
    layouts = sorted({r.layout_path for r in records if r.layout_path})
    if not layouts:  # a remote store makes none
        return None
    obj = store.path(sha256).stat()
    root = os.path.realpath(store.root)
    for layout in layouts:
        ids = tuple(r.id for r in records if r.layout_path == layout)
        path = store.root / layout
        inside = os.path.normpath(os.path.join(root, layout))
        if os.path.isabs(layout) or not inside.startswith(root + os.sep):
            return Problem("unsafe", sha256, layout, ids, "readable path is outside the store")
        if not os.path.realpath(path).startswith(root + os.sep):
            return Problem("unsafe", sha256, path, ids, "readable path links outside the store")
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return Problem("missing", sha256, path, ids, "readable path is missing")
        if (info.st_dev, info.st_ino) == (obj.st_dev, obj.st_ino):
            continue
        try:
            actual, _ = hash_file(path)
        except OSError as exc:
            return Problem("unreadable", sha256, path, ids, f"{type(exc).__name__}: {exc.strerror}")
        if actual != sha256:
            return Problem("mismatch", sha256, path, ids, f"readable copy hashes to {actual}")
    return None
