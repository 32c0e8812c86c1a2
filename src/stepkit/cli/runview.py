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

from stepkit.cli.common import console, format_duration, print_json, table

if TYPE_CHECKING:
    from stepkit.pipeline.results import RunResult
    from stepkit.pipeline.settings import Progress, RunProgress
    from stepkit.project import Project
    from stepkit.state import StateRepository
    from stepkit.state.records import RunRecord, StageRecord


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
    kept from before as they ended, not as pending.

    The run's duration is the one its record holds (what ``runs list`` and the report
    show): the live view's last title and the summary both read it from there."""
    from stepkit.pipeline.results import RunCancelled

    view = None if as_json else LiveView(earlier)
    try:
        result = call(view)
    except RunCancelled as exc:
        if view is not None:
            view.close()
        typer.echo(
            f"Run {exc.result.run_id} cancelled; resume it with: "
            f"{resume_command(project, exc.result.run_id)}",
            err=True,
        )
        raise typer.Exit(130) from None
    except BaseException:
        if view is not None:
            view.close()
        raise
    seconds = recorded_seconds(project, result.run_id)
    if view is not None:
        view.close(seconds=seconds)
    if report is not None:
        write_report(project, result.run_id, report)
    if as_json:
        print_json(_result_json(result, seconds))
    else:
        _summary(project, result, seconds)
    if not result.ok:
        raise typer.Exit(1)


def recorded_seconds(project: Project, run_id: str) -> float | None:
    """The run's duration as its record holds it (start to finish)."""
    from stepkit.state import open_state

    state = open_state(project)
    try:
        return run_seconds(state.get_run(run_id))
    finally:
        state.close()


def run_seconds(run: RunRecord) -> float | None:
    """Start to finish; for a run still going, start to now. The one duration of a run."""
    if run.started_at is None:
        return None
    return (run.finished_at or time.time()) - run.started_at


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
    callback) and redrawn by rich's own refresh thread. On a terminal it is redrawn in
    place; in a pipe it is printed once, when the run ends, and its last line ends."""

    def __init__(self, earlier: Sequence[StageRecord] = ()) -> None:
        from stepkit.state.records import latest_attempts

        self._live: Any = None
        self._started = time.time()
        self._seconds: float | None = None  # the run's recorded duration, once it ended
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

            self._started = time.time()  # the first event is sent as the run starts
            self._live = Live(
                self, console=console(stderr=True), refresh_per_second=8, transient=False
            )
            self._live.start()

    def __rich__(self) -> Any:
        now = time.time()
        seconds = self._seconds if self._seconds is not None else now - self._started
        return _table(list(self._stages), self._latest, now, self._run_id, seconds)

    def close(self, *, seconds: float | None = None) -> None:
        """Stop redrawing; ``seconds``, the run's recorded duration, titles the last draw."""
        self._seconds = seconds
        if self._live is not None:
            self._live.stop()
            self._live.console.line()  # the table's last line ends: what follows starts anew


_STYLES = {
    "completed": "green",
    "cached": "cyan",
    "failed": "red",
    "timed_out": "red",
    "running": "yellow",
    "skipped": "dim",
    "cancelled": "magenta",
    "interrupted": "magenta",
}


def _table(
    nodes: list[str],
    latest: dict[str, StageRecord],
    now: float,
    run_id: str | None,
    seconds: float,
) -> Any:
    shown = table(
        "node", "status", "elapsed", title=f"run {run_id or '…'} — {format_duration(seconds)}"
    )
    for node in nodes:
        record = latest.get(node)
        if record is None:
            shown.add_row(node, "pending", "")
            continue
        status = record.status.value
        if record.duration is not None:
            elapsed = format_duration(record.duration)
        elif record.finished_at and record.started_at:
            elapsed = format_duration(record.finished_at - record.started_at)
        elif record.started_at:
            elapsed = format_duration(now - record.started_at)
        else:
            elapsed = ""
        shown.add_row(node, f"[{_STYLES.get(status, '')}]{status}[/]", elapsed)
    return shown


def _result_json(result: Any, seconds: float | None) -> dict[str, Any]:
    from stepkit.plan.execute import output_folders, step_seconds

    return {
        "run_id": result.run_id,
        "status": result.status.value,
        "seconds": round(seconds, 3) if seconds is not None else None,
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


def _summary(project: Project, result: Any, seconds: float | None) -> None:
    """The run's outcome, its failures, and its outputs one per line under their folder."""
    from rich.markup import escape

    from stepkit.plan.execute import output_folders

    out = console()
    counts: dict[str, int] = {}
    for stage in result.stages.values():
        counts[stage.status.value] = counts.get(stage.status.value, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    out.print(
        f"[bold]run {result.run_id}[/bold]: {result.status.value} in "
        f"{format_duration(seconds)} ({parts})"
    )
    for name, stage in result.stages.items():
        if stage.error_type:
            message = escape(f"{stage.error_type}: {stage.error_message}")
            out.print(f"  [red]{escape(name)}[/red]: {message}")
        elif stage.reason and stage.status.value == "skipped":
            out.print(f"  [dim]{escape(name)}: skipped — {escape(stage.reason)}[/dim]")
    by_run: dict[str, list[str]] = {}  # outputs of cache hits live under their first run
    for name, outputs in output_folders(result).items():
        for output, path in outputs.items():
            run_dir = str(Path(path).parent.parent)
            by_run.setdefault(run_dir, []).append(f"{name}/{output}")
    lines = []
    for run_dir, entries in by_run.items():
        lines.append(f"outputs in {run_dir}/:")
        lines += [f"  {entry}" for entry in entries]
    if lines:
        out.print("\n".join(lines), markup=False)
    if not result.ok:
        out.print(f"fix the failure, then: {resume_command(project, result.run_id)}", markup=False)


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
