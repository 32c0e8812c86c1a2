"""``stepkit artifacts …``: add, show, where, stats, dedup-report, verify, gc, import-manifest."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stepkit.cli.common import console, load_project, print_json, progress_bar, table

if TYPE_CHECKING:
    from stepkit.artifacts import ArtifactRecord, ArtifactStore, Finalized

app = typer.Typer(
    help="The content-addressed artifact store and its catalog.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _store(ctx: typer.Context, *, read_only: bool = False) -> ArtifactStore:
    """The project's store; ``read_only`` for the commands that only read, so a read-only
    state folder serves them (a catalog not made yet is made, as for any command)."""
    from stepkit.artifacts import ArtifactStore

    project = load_project(ctx)
    if not read_only:
        return ArtifactStore.for_project(project)
    from stepkit.artifacts.backends import catalog_location, open_catalog

    location = catalog_location(project)
    exists = "://" in location or Path(location).exists()
    catalog = open_catalog(location, read_only=exists)
    return ArtifactStore(root=project.artifacts_root, catalog=catalog)


@contextmanager
def _progress(description: str, total: float | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields the function that advances it."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    with progress_bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda step: progress.advance(task, step)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _records_table(title: str, records: list[ArtifactRecord]) -> None:
    """Every record whole: ids, digests and paths are what people copy from here."""
    from rich.text import Text

    shown = table(
        "id", "artifact", "v", "producer", "source", "bytes", "sha256", "path", title=title
    )
    for r in records:
        shown.add_row(
            str(r.id),
            Text(r.artifact_id),
            str(r.version),
            Text(r.producer),
            Text(r.source),
            _human(r.bytes),
            r.sha256,
            Text(r.layout_path or ""),
        )
    console().print(shown)


#: ``add`` lists each file up to this many; past it, a summary (``--json`` lists them all).
LISTED_FILES = 20


@contextmanager
def _progress_on_terminal(description: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar when stderr is a terminal and there is enough to wait for; else none
    (a bar nobody sees would still cost a call per file)."""
    if total < 2 or not sys.stderr.isatty():
        yield None
        return
    with _progress(description, total) as advance:
        yield advance


@app.command("add")
def add(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Files (a folder adds each file in it).")],
    artifact_id: Annotated[
        str, typer.Option("--artifact-id", help="Artifact id (a folder's files get id/relpath).")
    ],
    source: Annotated[str, typer.Option("--source", help="Where the content came from.")],
    producer: Annotated[str, typer.Option("--producer", help="What produced it.")],
    run: Annotated[str | None, typer.Option("--run", help="Run id to record.")] = None,
    copy: Annotated[bool, typer.Option("--copy", help="Copy the bytes instead of moving.")] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep moved files in place as read-only links.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Finalize files into the store and record them (a folder in batches: one sync and one
    transaction each)."""
    from stepkit.artifacts.items import add_items

    items = add_items(files, artifact_id=artifact_id, source=source, producer=producer, run_id=run)
    store = _store(ctx)
    with store, _progress_on_terminal("finalizing", len(items)) as advance:
        results = store.finalize_batches(
            items, mode="copy" if copy else "move", keep=keep, on_progress=advance
        )
    if as_json:
        print_json(
            [
                {
                    **r.record.as_dict(),
                    "status": r.status,
                    "dedup_hit": r.dedup_hit,
                    "copied": r.copied,
                    "storage_path": str(r.location),
                    "layout_copied": r.layout_copied,
                    "layout_path": str(r.layout_path) if r.layout_path else None,
                }
                for r in results
            ]
        )
        return
    _print_added(results)


def _print_added(results: list[Finalized]) -> None:
    """One line per file (and its readable path) for a few; then a summary."""
    lines = []
    for r in results[:LISTED_FILES]:
        notes = [r.status] + (["dedup"] if r.dedup_hit else []) + (["copied"] if r.copied else [])
        notes += ["readable path is a copy"] if r.layout_copied else []
        lines.append(f"{r.sha256}  {r.record.artifact_id}  ({', '.join(notes)})\n")
        if r.layout_path:
            lines.append(f"    {r.layout_path}\n")
    if len(results) > LISTED_FILES:
        new = sum(1 for r in results if not r.dedup_hit)
        stored = sum(r.bytes for r in results if not r.dedup_hit)
        lines.append(
            f"… and {len(results) - LISTED_FILES} more (--json lists every file)\n"
            f"{len(results)} files: {new} new objects ({_human(stored)}), "
            f"{len(results) - new} already stored\n"
        )
    sys.stdout.write("".join(lines))


@app.command("show")
def show(ctx: typer.Context, artifact_id: str, as_json: JsonOption = False) -> None:
    """Every version of an artifact."""
    with _store(ctx, read_only=True) as store:
        records = store.show(artifact_id)
    if as_json:
        print_json([r.as_dict() for r in records])
    else:
        _records_table(f"{artifact_id}: {len(records)} record(s)", records)


@app.command("where")
def where(ctx: typer.Context, sha256: str, as_json: JsonOption = False) -> None:
    """The object of a SHA-256 and every record that uses it."""
    with _store(ctx, read_only=True) as store:
        records = store.where(sha256)
        path = store.location_of(sha256)
    if as_json:
        print_json({"sha256": sha256, "path": str(path), "records": [r.as_dict() for r in records]})
        return
    console().print(str(path), markup=False)
    _records_table(f"{len(records)} record(s)", records)


@app.command("stats")
def stats(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Records, objects, bytes and the last verify."""
    with _store(ctx, read_only=True) as store:
        data: dict[str, Any] = store.catalog.stats()
        data["last_verify"] = store.catalog.get_meta("last_verify")
        data["root"] = store.location
    if as_json:
        print_json(data)
        return
    out = console()
    for key, value in data.items():
        shown = _human(value) if key.endswith("_bytes") else value
        out.print(f"{key:>14}: {shown if shown is not None else '-'}", markup=False)


@app.command("dedup-report")
def dedup_report(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Bytes saved by content addressing, per producer."""
    with _store(ctx, read_only=True) as store:
        rows = store.catalog.dedup_by_producer()
        totals = store.catalog.stats()
    if as_json:
        print_json({"producers": rows, "saved_bytes": totals["saved_bytes"]})
        return
    from rich.text import Text

    shown = table(
        "producer",
        "records",
        "dedup records",
        "logical",
        "saved",
        title=f"Saved by dedup: {_human(totals['saved_bytes'])}",
    )
    for row in rows:
        shown.add_row(
            Text(row["producer"]),
            str(row["records"]),
            str(row["dedup_records"]),
            _human(row["logical_bytes"]),
            _human(row["saved_bytes"]),
        )
    console().print(shown)


def _parse_date(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (use YYYY-MM-DD or an ISO timestamp)", param_hint="--since"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@app.command("verify")
def verify(
    ctx: typer.Context,
    sample: Annotated[
        int | None, typer.Option("--sample", min=1, help="Check N random objects only.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only records registered since DATE.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-hash stored objects: ok / missing / mismatch / unreadable / unsafe, and list
    objects no record names; exit 1 on any problem or a catalog that names no object."""
    since_iso = _parse_date(since)
    with _store(ctx) as store:  # records what it verified; read-only if it must be
        total = sum(r.bytes for r in store.catalog.records(since=since_iso))
        with _progress("verifying (bytes)", total or None) as advance:
            report = store.verify(sample=sample, since=since_iso, on_progress=advance)
    if as_json:
        print_json(
            {
                "objects": report.checked_objects,
                "records": report.checked_records,
                "ok": report.ok,
                "missing": report.count("missing"),
                "mismatch": report.count("mismatch"),
                "unreadable": report.count("unreadable"),
                "unsafe": report.count("unsafe"),
                "catalog": report.count("catalog"),
                "orphans": [{"sha256": o.sha256, "path": str(o.path)} for o in report.orphans],
                "recorded": report.recorded,
                "suspect": report.suspect,
                "verified_at": report.verified_at,
                "problems": [
                    {
                        "kind": p.kind,
                        "sha256": p.sha256,
                        "path": str(p.path),
                        "record_ids": list(p.record_ids),
                        "detail": p.detail,
                    }
                    for p in report.problems
                ],
            }
        )
    else:
        out = console()
        for p in report.problems:
            ids = f"; records {list(p.record_ids)}" if p.record_ids else ""
            out.print(f"{p.kind}: {p.path} ({p.detail}{ids})", markup=False)
        for o in report.orphans:
            out.print(f"orphan: {o.path} ({o.detail})", markup=False)
        if report.suspect:
            out.print(f"catalog: {report.suspect}", markup=False)
        out.print(
            f"{report.checked_objects} objects checked ({_human(report.checked_bytes)}): "
            f"{report.ok} ok, {report.count('missing')} missing, "
            f"{report.count('mismatch')} mismatch, {report.count('unreadable')} unreadable"
            + (f", {report.count('unsafe')} unsafe" if report.count("unsafe") else "")
            + (f"; {len(report.orphans)} objects no record names" if report.orphans else "")
            + ("" if report.recorded else " (catalog read-only: not recorded)")
        )
    if report.problems or report.suspect:
        raise typer.Exit(1)


@app.command("gc")
def gc(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Really delete (default: dry run).")
    ] = False,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Also drop versions older than this (30d, 12h…)."),
    ] = None,
    keep_last: Annotated[
        int, typer.Option("--keep-last", min=0, help="Versions per artifact always kept.")
    ] = 1,
    grace: Annotated[
        str, typer.Option("--grace", help="Never collect files changed within this (1h).")
    ] = "1h",
    force: Annotated[
        bool,
        typer.Option("--force", help="Collect even when the catalog looks emptied or damaged."),
    ] = False,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout", min=0, help="Seconds to wait for finalizes before deleting."
        ),
    ] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Remove objects no record references (and old versions with --older-than).

    --apply refuses when the catalog fails its integrity check or knows no object while
    the store holds some (an emptied catalog); --force overrides.
    """
    from stepkit.artifacts.gc import collect, parse_age

    try:
        age = parse_age(older_than) if older_than else None
        grace_age = parse_age(grace)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with _store(ctx) as store:
        report = collect(
            store,
            apply=apply,
            older_than=age,
            keep_last=keep_last,
            grace=grace_age,
            force=force,
            lock_timeout=lock_timeout,
        )
    verb = "removed" if apply else "would remove"
    if as_json:
        print_json(
            {
                "applied": apply,
                "bytes": report.bytes,
                "objects": [{"sha256": d.sha256, "bytes": d.bytes} for d in report.objects],
                "temp_files": [str(d.path) for d in report.temp_files],
                "records": [r.id for r in report.records],
                "kept_in_grace": report.kept_in_grace,
            }
        )
        return
    out = console()
    for record in report.records:
        out.print(
            f"{verb} record {record.id} ({record.artifact_id} v{record.version})", markup=False
        )
    for doomed in [*report.objects, *report.temp_files]:
        out.print(f"{verb} {doomed.path} ({_human(doomed.bytes)})", markup=False)
    out.print(
        f"{verb}: {len(report.objects)} objects, {len(report.temp_files)} temp files, "
        f"{len(report.records)} records, {_human(report.bytes)}"
        + (f"; {report.kept_in_grace} kept (within grace)" if report.kept_in_grace else "")
        + ("" if apply else " — dry run, use --apply to delete")
    )


def _count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None  # the library says what is wrong with it
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


@app.command("import-manifest")
def import_manifest(
    ctx: typer.Context,
    manifest: Path,
    apply: Annotated[
        bool, typer.Option("--apply", help="Really import (default: dry run).")
    ] = False,
    hash_missing: Annotated[
        bool, typer.Option("--hash-missing", help="Hash files whose line has no sha256.")
    ] = False,
    allow_root: Annotated[
        list[Path] | None,
        typer.Option("--allow-root", help="Folder files may come from (default: the manifest's)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Backfill the catalog from a JSON-lines manifest (generic or download form)."""
    with _store(ctx) as store, _progress("importing (lines)", _count_lines(manifest)) as advance:
        report = store.import_manifest(
            manifest,
            apply=apply,
            hash_missing=hash_missing,
            allowed_roots=allow_root or None,
            on_progress=advance,
        )
    if as_json:
        print_json(
            {
                "applied": apply,
                "lines": report.lines,
                "imported": report.imported,
                "already_present": report.already_present,
                "skipped": [{"line": n, "reason": r} for n, r in report.skipped],
                "malformed": [{"line": n, "reason": r} for n, r in report.malformed],
            }
        )
        return
    out = console()
    for number, reason in report.malformed:
        out.print(f"{manifest}:{number}: malformed: {reason}", markup=False)
    for number, reason in report.skipped:
        out.print(f"{manifest}:{number}: skipped: {reason}", markup=False)
    out.print(
        f"{'imported' if apply else 'would import'} {report.imported}, "
        f"already present {report.already_present}, skipped {len(report.skipped)}, "
        f"malformed {len(report.malformed)}" + ("" if apply else " — dry run, use --apply")
    )
