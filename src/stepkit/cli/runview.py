"""Showing a run: the live stage table drawn from the run's progress events, the summary
or JSON printed after it, the resume hint, and the HTML report page.

Shared by ``stepkit run`` and ``stepkit runs resume``/``report``; the command modules parse
options and call the library, this module prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from stepkit.cli.common import console, print_json

if TYPE_CHECKING:
    from stepkit.pipeline.results import RunResult
    from stepkit.pipeline.settings import Progress, RunProgress
    from stepkit.project import Project
    from stepkit.state import StateRepository
    from stepkit.state.records import StageRecord


def run_in_view(
    project: Project,
    call: Callable[[Progress | None], RunResult],
    *,
    as_json: bool,
    report: Path | None,
    earlier: Sequence[StageRecord] = (),
) -> None:
    """Run ``call`` (a run or a resume) under the live view, or quietly for ``--json``, then
    print the summary. Ctrl-C exits 130 with the command that resumes the run.

    ``earlier``: the records a resumed run already has, so that the view shows the stages
    kept from before as they ended, not as pending."""
    from stepkit.pipeline.results import RunCancelled

    started = time.perf_counter()
    view = None if as_json else LiveView(earlier)
    try:
        result = call(view)
    except RunCancelled as exc:
        if view is not None:  # its last redraw first: it would wipe the lines printed before
            view.close()
            view = None
        typer.echo(
            f"Run {exc.result.run_id} cancelled; resume it with: "
            f"{resume_command(project, exc.result.run_id)}",
            err=True,
        )
        raise typer.Exit(130) from None
    finally:
        if view is not None:
            view.close()
    elapsed = time.perf_counter() - started
    if report is not None:
        write_report(project, result.run_id, report)
    if as_json:
        print_json(_result_json(result, elapsed))
    else:
        _summary(project, result, elapsed)
    if not result.ok:
        raise typer.Exit(1)


def resume_command(project: Project, run_id: str) -> str:
    """The command that resumes ``run_id`` with its own DAG, config and project."""
    here = Path.cwd().resolve()
    inside = here == project.root or project.root in here.parents
    where = "" if inside else f"-p {project.root} "
    return f"stepkit {where}runs resume {run_id}"


def write_report(project: Project, run_id: str, path: Path) -> None:
    """The run's self-contained HTML page (see ``stepkit runs report``)."""
    from stepkit.atomic import atomic_write_text
    from stepkit.state import open_state

    state = open_state(project)
    try:
        page = report_page(project, state, run_id)
    finally:
        state.close()
    atomic_write_text(path, page)
    typer.echo(f"report: {path.absolute()}", err=True)


class LiveView:
    """The stage table of one run, kept from that run's progress events (the ``progress``
    callback) and redrawn by rich's own refresh thread."""

    def __init__(self, earlier: Sequence[StageRecord] = ()) -> None:
        from stepkit.state.records import latest_attempts

        self._live: Any = None
        self._started = time.time()
        self._run_id: str | None = None
        self._stages: tuple[str, ...] = ()
        self._latest: dict[str, StageRecord] = latest_attempts(list(earlier))

    def __call__(self, event: RunProgress) -> None:
        latest = dict(self._latest)  # replaced whole: the refresh thread reads the old one
        for record in event.records:
            known = latest.get(record.stage)
            if known is None or record.attempt >= known.attempt:
                latest[record.stage] = record
        self._run_id, self._stages, self._latest = event.run_id, event.stages, latest
        if self._live is None:
            from rich.live import Live

            self._live = Live(
                self, console=console(stderr=True), refresh_per_second=8, transient=False
            )
            self._live.start()

    def __rich__(self) -> Any:
        return _table(list(self._stages), self._latest, self._started, self._run_id)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live.console.line()  # the table's last line ends: what follows starts anew


def _table(
    nodes: list[str], latest: dict[str, StageRecord], started: float, run_id: str | None
) -> Any:
    from rich.table import Table

    now = time.time()
    title = f"run {run_id or '…'} — {now - started:.1f} s"
    table = Table(title=title, expand=False)
    for column in ("node", "status", "elapsed"):
        table.add_column(column)
    styles = {
        "completed": "green",
        "cached": "cyan",
        "failed": "red",
        "timed_out": "red",
        "running": "yellow",
        "skipped": "dim",
        "cancelled": "magenta",
        "interrupted": "magenta",
    }
    for node in nodes:
        record = latest.get(node)
        if record is None:
            table.add_row(node, "pending", "")
            continue
        status = record.status.value
        if record.finished_at and record.started_at:
            elapsed = f"{record.finished_at - record.started_at:.2f} s"
        elif record.started_at:
            elapsed = f"{now - record.started_at:.1f} s"
        else:
            elapsed = ""
        table.add_row(node, f"[{styles.get(status, '')}]{status}[/]", elapsed)
    return table


def _result_json(result: Any, elapsed: float) -> dict[str, Any]:
    from stepkit.plan.execute import output_folders, step_seconds

    return {
        "run_id": result.run_id,
        "status": result.status.value,
        "seconds": round(elapsed, 3),
        "step_seconds": round(step_seconds(result), 3),
        "stages": {
            name: {
                "status": stage.status.value,
                "attempts": stage.attempts,
                "error": f"{stage.error_type}: {stage.error_message}" if stage.error_type else None,
                "reason": stage.reason,
            }
            for name, stage in result.stages.items()
        },
        "outputs": output_folders(result),
    }


def _summary(project: Project, result: Any, elapsed: float) -> None:
    from stepkit.plan.execute import output_folders

    out = console()
    counts: dict[str, int] = {}
    for stage in result.stages.values():
        counts[stage.status.value] = counts.get(stage.status.value, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    out.print(
        f"[bold]run {result.run_id}[/bold]: {result.status.value} in {elapsed:.2f} s ({parts})"
    )
    for name, stage in result.stages.items():
        if stage.error_type:
            out.print(f"  [red]{name}[/red]: {stage.error_type}: {stage.error_message}")
        elif stage.reason and stage.status.value == "skipped":
            out.print(f"  [dim]{name}: skipped — {stage.reason}[/dim]")
    folders = output_folders(result)
    by_run: dict[str, list[str]] = {}  # outputs of cache hits live under their first run
    for name, outputs in folders.items():
        for output, path in outputs.items():
            run_dir = str(Path(path).parent.parent)
            by_run.setdefault(run_dir, []).append(f"{name}/{output}")
    for run_dir, entries in by_run.items():
        out.print(f"outputs in {run_dir}/:")
        out.print("  " + ", ".join(entries), soft_wrap=True)
    if not result.ok:
        out.print(f"fix the failure, then: {resume_command(project, result.run_id)}")


def report_page(project: Project, state: StateRepository, run_id: str) -> str:
    """The run's report page, with cache provenance and config values from the project's
    step cache when it has one (a run of plain functions has none: nothing is created)."""
    from stepkit.pipeline.report import report_page as page_of
    from stepkit.plan.cache_backends import cache_location, open_cache
    from stepkit.postgres import is_postgres_url

    location = cache_location(project)
    if not is_postgres_url(location) and not Path(location).is_file():
        return page_of(state, run_id)
    cache = open_cache(location)
    try:
        return page_of(state, run_id, cache=cache)
    finally:
        cache.close()
