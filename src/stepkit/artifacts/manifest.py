"""Backfill the catalog from a JSON-lines manifest, one bad line never stopping the rest.

Two forms are read: the generic one (``artifact_id``, ``source_url``, ``resolver``,
``sha256``, ``bytes``, ``path``, ``content_type``, ``run_id``) and the download-manifest
one (``record_type: "manifest"``, ``work_id``, ``url``, ``classification``,
``content_length``, ``path``, ``sha256``, ``resolver``, ``run_id``, ``dry_run``). Every line
ends up counted as imported, already present, skipped (with its reason) or malformed
(with its line number). Without ``apply`` nothing is written: the counts say what would be.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stepkit.artifacts import metrics
from stepkit.artifacts.blobs import make_durable
from stepkit.artifacts.digest import hash_file, validate_digest
from stepkit.artifacts.items import FinalizeItem
from stepkit.artifacts.lock import store_lock
from stepkit.artifacts.records import Registration
from stepkit.errors import ArtifactStoreError, InvalidDigestError, ManifestError, StepkitError

if TYPE_CHECKING:
    from stepkit.artifacts.items import Progress
    from stepkit.artifacts.parts import StoreParts

#: A longer line is refused unread (a manifest line is a few hundred bytes).
MAX_LINE_BYTES = 1024 * 1024
BATCH = 2000
CONTENT_TYPES = {"pdf": "application/pdf", "html": "text/html", "xml": "application/xml"}


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("sha256", mode="before", check_fields=False)
    @classmethod
    def _digest(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            value = value.strip().lower()
        try:
            return validate_digest(value)
        except InvalidDigestError as exc:
            raise ValueError(str(exc)) from None


class GenericRow(_Row):
    artifact_id: str = Field(min_length=1)
    source_url: str = Field(min_length=1)
    resolver: str = Field(min_length=1)
    path: str = Field(min_length=1)
    sha256: str | None = None
    bytes: int | None = Field(default=None, ge=0)
    content_type: str | None = None
    run_id: str | None = None


class DownloadRow(_Row):
    record_type: Literal["manifest"]
    work_id: str = Field(min_length=1)
    url: str = Field(min_length=1)
    classification: Literal["pdf", "html", "xml"]
    resolver: str = Field(min_length=1)
    path: str = Field(min_length=1)
    sha256: str | None = None
    content_length: int | None = Field(default=None, ge=0)
    run_id: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """A manifest line that parsed, in the store's terms."""

    line: int
    artifact_id: str
    source: str
    producer: str
    path: str
    sha256: str | None
    bytes: int | None
    content_type: str | None
    run_id: str | None


@dataclass(slots=True)
class ImportReport:
    """Counts, plus (line, reason) for every line not imported."""

    applied: bool
    lines: int = 0
    imported: int = 0
    already_present: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)


def parse_line(raw: bytes, line: int) -> Entry | str:
    """One line → an :class:`Entry`, or the reason it is skipped (prefixed ``skip:``) or
    malformed (any other string)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"invalid JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason})"
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    try:
        if "record_type" in data:
            if data["record_type"] != "manifest":
                return f"skip:record_type {data['record_type']!r} is not a manifest record"
            row = DownloadRow.model_validate(data)
            if row.dry_run:
                return "skip:dry-run record (nothing was downloaded)"
            return Entry(
                line, row.work_id, row.url, row.resolver, row.path, row.sha256,
                row.content_length, CONTENT_TYPES[row.classification], row.run_id,
            )  # fmt: skip
        generic = GenericRow.model_validate(data)
    except ValidationError as exc:
        return "; ".join(_describe(error) for error in exc.errors()[:3])
    return Entry(
        line, generic.artifact_id, generic.source_url, generic.resolver, generic.path,
        generic.sha256, generic.bytes, generic.content_type, generic.run_id,
    )  # fmt: skip


def _describe(error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "line"
    if error["type"] == "missing":
        return f"missing field {key!r}"
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{key}: {error['msg']} (got {shown})"


def read_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes | int]]:
    """Yield (line number, raw bytes — or the size of a line too long to read), never
    holding a long line in memory."""
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
                size += len(raw)
            yield number, size
            continue
        yield number, raw


def import_manifest(
    store: StoreParts,
    manifest: Path,
    *,
    apply: bool = False,
    hash_missing: bool = False,
    allowed_roots: Sequence[Path] | None = None,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import ``manifest`` into ``store`` (or, without ``apply``, count what would be)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ManifestError(manifest, "no such manifest file")
    base = manifest.resolve().parent
    roots = [Path(r).resolve() for r in (allowed_roots or [base])]
    prefixes = [str(root).rstrip(os.sep) + os.sep for root in roots]
    report = ImportReport(applied=apply)
    batch: list[tuple[Entry, Path]] = []
    with open(manifest, "rb") as handle:
        for number, raw in read_lines(handle):
            report.lines = number
            if on_progress is not None:
                on_progress(1)
            if isinstance(raw, int):
                report.malformed.append((number, f"line too long ({raw:,} bytes)"))
                continue
            if not raw.strip():
                continue  # blank lines are not rows
            parsed = parse_line(raw, number)
            if isinstance(parsed, str):
                if parsed.startswith("skip:"):
                    report.skipped.append((number, parsed.removeprefix("skip:")))
                else:
                    report.malformed.append((number, parsed))
                continue
            # Lexical check here; symlinks are resolved (and checked) only when the file
            # itself is read, in _check_file.
            norm = os.path.normpath(os.path.join(base, parsed.path))
            if not any(norm.startswith(prefix) for prefix in prefixes):
                allowed = ", ".join(str(r) for r in roots)
                report.skipped.append((number, f"path {parsed.path!r} is outside {allowed}"))
                continue
            batch.append((parsed, Path(norm)))
            if len(batch) >= BATCH:
                _flush(store, batch, report, prefixes, apply=apply, hash_missing=hash_missing)
                batch = []
    _flush(store, batch, report, prefixes, apply=apply, hash_missing=hash_missing)
    return report


def _flush(
    store: StoreParts,
    batch: list[tuple[Entry, Path]],
    report: ImportReport,
    prefixes: list[str],
    *,
    apply: bool,
    hash_missing: bool,
) -> None:
    if not batch:
        return
    ready: list[tuple[FinalizeItem, str, int]] = []
    lines: list[int] = []
    # Any content a key ever had is present: a manifest holding two versions of an artifact
    # adds nothing when imported again (the newest version alone would re-add the older).
    seen = store.catalog.known_digests((e.artifact_id, e.source, e.producer) for e, _ in batch)
    for entry, path in batch:
        checked = _check_file(store, entry, path, prefixes, hash_missing=hash_missing)
        if isinstance(checked, str):
            report.skipped.append((entry.line, checked))
            continue
        sha256, size = checked
        key = (entry.artifact_id, entry.source, entry.producer)
        if (*key, sha256) in seen:
            report.already_present += 1
            continue
        seen.add((*key, sha256))
        item = FinalizeItem(
            path, entry.artifact_id, entry.source, entry.producer, entry.run_id, entry.content_type
        )
        ready.append((item, sha256, size))
        lines.append(entry.line)
    if not apply:
        report.imported += len(ready)
        return
    try:
        counts = _adopt(store, ready)
    except StepkitError:
        # One bad file must not sink the batch: retry one by one to find and skip it.
        counts = {"new": 0, "present": 0, "new_version": 0}
        for (item, sha256, size), line in zip(ready, lines, strict=True):
            try:
                for status, count in _adopt(store, [(item, sha256, size)]).items():
                    counts[status] += count
            except (StepkitError, OSError) as exc:
                report.skipped.append((line, str(exc)))
    report.already_present += counts["present"]
    report.imported += counts["new"] + counts["new_version"]


def _check_file(
    store: StoreParts, entry: Entry, path: Path, prefixes: list[str], *, hash_missing: bool
) -> tuple[str, int] | str:
    """(sha256, size) to record, or why the line is skipped."""
    if entry.sha256 is not None and store.exists(entry.sha256):
        size = store.path(entry.sha256).stat().st_size  # the file itself is never read
        if entry.bytes is not None and entry.bytes != size:
            return (
                f"the stored object {entry.sha256} has {size} bytes, "
                f"the manifest says {entry.bytes}"
            )
        return entry.sha256, size
    real = os.path.realpath(path)
    if not any(real.startswith(prefix) for prefix in prefixes):
        return f"path {entry.path!r} resolves to {real}, outside the allowed roots"
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"file {entry.path!r} not found and its content is not stored"
    except OSError as exc:
        return f"file {entry.path!r} unreadable: {exc.strerror}"
    if not path.is_file():
        return f"{entry.path!r} is not a regular file"
    if entry.bytes is not None and entry.bytes != info.st_size:
        return f"file {entry.path!r} has {info.st_size} bytes, the manifest says {entry.bytes}"
    if entry.sha256 is not None:
        return entry.sha256, info.st_size
    if not hash_missing:
        return "no sha256 (use --hash-missing to hash the file)"
    try:
        return hash_file(path)
    except OSError as exc:
        return f"file {entry.path!r} unreadable: {exc.strerror}"


def _adopt(store: StoreParts, entries: Sequence[tuple[FinalizeItem, str, int]]) -> dict[str, int]:
    """Record files whose digest is already known, keeping them where they are.

    The digest is trusted (run ``verify`` afterwards). A missing object is linked from the
    file (copied and checked when a link is impossible); the file is never removed, and
    it is its own readable path, so no other is made. Records go in through the bulk
    registration; returns its counts (``new``, ``present``, ``new_version``).
    """
    if store.remote is not None:
        raise ArtifactStoreError(
            f"import-manifest into a remote store ({store.remote.url}) is not supported; "
            "import into a local store."
        )
    blobs = store.local
    new_objects: list[tuple[str, int]] = []
    dedup_hits = 0
    with store_lock(store.root, exclusive=False):
        registrations = []
        for item, sha256, size in entries:
            validate_digest(sha256)
            if store.exists(sha256):
                dedup_hits += 1
            elif not isinstance(item.file, Path):
                raise ArtifactStoreError(f"No object {sha256} and no file to take it from.")
            elif os.stat(item.file).st_dev == blobs.device:
                if blobs.link_in(item.file, sha256):
                    dedup_hits += 1
                else:
                    new_objects.append((sha256, size))
            else:
                with open(item.file, "rb", buffering=0) as handle:
                    temp, actual, _ = blobs.write_temp(handle)
                if actual != sha256:
                    temp.unlink(missing_ok=True)
                    raise ArtifactStoreError(f"{item.file} hashes to {actual}, not {sha256}.")
                make_durable([temp], ())
                if blobs.publish_temp(temp, sha256):
                    dedup_hits += 1
                else:
                    new_objects.append((sha256, size))
            registrations.append(
                Registration(
                    artifact_id=item.artifact_id,
                    source=item.source,
                    producer=item.producer,
                    sha256=sha256,
                    bytes=size,
                    storage_uri=blobs.uri(sha256),
                    content_type=item.content_type,
                    run_id=item.run_id,
                )
            )
        paths = [blobs.path_str(sha256) for sha256, _ in new_objects]
        make_durable(paths, {p[:-63] for p in paths}, device_of=store.root)
        counts = store.catalog.register_bulk(registrations)
    metrics.dedup_hits(dedup_hits)
    metrics.bytes_stored(sum(size for _, size in new_objects))
    return counts
