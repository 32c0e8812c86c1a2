"""``stepkit runs …``: list, show, logs, resume and report pipeline runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stepkit.cli.common import (
    choose,
    console,
    format_duration,
    load_project,
    print_json,
    table,
)
from stepkit.cli.runview import report_page, run_in_view, run_seconds

if TYPE_CHECKING:
    from stepkit.state import LogEvent, RunRecord, StageRecord, StateRepository

app = typer.Typer(help="Pipeline runs: what happened, when, and why.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@contextmanager
def _state(ctx: typer.Context) -> Iterator[StateRepository]:
    from stepkit.state import open_state

    repo = open_state(load_project(ctx))
    try:
        yield repo
    finally:
        repo.close()


def resolve_run_id(state: StateRepository, given: str) -> str:
    """``latest`` is the newest run; a unique prefix of a run id names that run."""
    from stepkit.errors import UnknownRunError

    if given == "latest":
        newest = state.list_runs(limit=1)
        if newest:
            return newest[0].run_id
    try:
        return state.get_run(given).run_id  # a whole id: no need to read every run
    except UnknownRunError:
        pass  # a prefix, or a typo the caller's own lookup reports with close ids
    matches = [r.run_id for r in state.list_runs() if r.run_id.startswith(given)]
    return matches[0] if len(matches) == 1 else given


def _when(ts: float | None) -> str:
    return "–" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _finalize_note(outputs: Any) -> str:
    """`` (finalize 12.3 ms)`` for a step node that stored outputs: the hand-off's share."""
    info = outputs.get("_node") if isinstance(outputs, dict) else None
    seconds = info.get("finalize_seconds") if isinstance(info, dict) else None
    return f" (finalize {format_duration(seconds)})" if isinstance(seconds, int | float) else ""


def _runner_gone(run: RunRecord) -> bool:
    """A run still recorded ``running`` whose runner is dead (killed, its machine down):
    the next runner or resume marks it interrupted; until then it is shown as such."""
    from stepkit.state.leases import lease_is_dead

    return lease_is_dead(run, now=time.time())


def _last_beat(run: RunRecord) -> str:
    """`` (last heartbeat 12.0 s ago)``: when the runner was last known alive, if recorded."""
    if run.last_heartbeat is None:
        return ""
    return f" (last heartbeat {format_duration(max(time.time() - run.last_heartbeat, 0.0))} ago)"


def _status(run: RunRecord) -> str:
    return "running (runner gone)" if _runner_gone(run) else str(run.status)


def _run_duration(run: RunRecord) -> float | None:
    if run.finished_at is None and _runner_gone(run):
        return None  # it ended with its runner, at a time nobody recorded
    return run_seconds(run)


def _run_json(run: RunRecord) -> dict[str, Any]:
    data = asdict(run)
    data["status"] = str(run.status)
    data["runner_gone"] = _runner_gone(run)  # recorded running, but nobody is running it
    data["graph"] = {k: list(v) for k, v in run.graph.items()}
    return data


def _stage_json(record: StageRecord) -> dict[str, Any]:
    data = asdict(record)
    data["status"] = str(record.status)
    return data


@app.command("list")
def list_runs(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="Only runs with this status.")
    ] = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only runs of this pipeline.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many runs.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    from stepkit.state import RunStatus

    wanted = None
    if status is not None:
        wanted = RunStatus(
            choose(status, [str(s) for s in RunStatus], what="status", option="--status")
        )
    with _state(ctx) as state:
        runs = state.list_runs(status=wanted, pipeline=pipeline, limit=limit)
    if as_json:
        print_json([_run_json(run) for run in runs])
        return
    shown = table("run", "pipeline", "status", "created", "duration", "retries", plain=True)
    for run in runs:
        shown.add_row(
            run.run_id,
            run.pipeline,
            _status(run),
            _when(run.created_at),
            format_duration(_run_duration(run)),
            str(run.retries),
        )
    console().print(shown if runs else "No runs recorded yet.")


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[
        str,
        typer.Argument(help="The run id (see `stepkit runs list`), a unique prefix, or latest."),
    ],
    as_json: JsonOption = False,
) -> None:
    """A run's stages: status, attempts, durations, errors, and a timeline."""
    from stepkit.pipeline.report.data import alive_until
    from stepkit.state.records import StageStatus, latest_attempts

    with _state(ctx) as state:
        run_id = resolve_run_id(state, run_id)
        run = state.get_run(run_id)
        records = state.stage_records(run_id)
        last_lines: list[float] = []
        if any(r.status == StageStatus.INTERRUPTED for r in records):  # where its bar ends
            tails = state.log_tails(run_id, size=1).values()
            last_lines = [tail.events[-1].ts for tail in tails if tail.events]
    if as_json:
        print_json({"run": _run_json(run), "attempts": [_stage_json(r) for r in records]})
        return
    from rich.markup import escape
    from rich.text import Text

    out = console()
    out.print(
        f"[bold]{run.run_id}[/bold]  {escape(run.pipeline)}  {_status(run)}  "
        f"created {_when(run.created_at)}  duration {format_duration(_run_duration(run))}"
    )
    if run.error:
        out.print(f"error: {run.error}", markup=False)
    if _runner_gone(run):
        from stepkit.state.leases import holder

        out.print(
            f"its runner ({holder(run)}) stopped without finishing{_last_beat(run)}; "
            f"resume it with: stepkit runs resume {run.run_id}"
        )
    latest = latest_attempts(records)
    starts = [r.started_at for r in records if r.started_at is not None]
    ends = [r.finished_at or r.started_at for r in records if r.started_at is not None]
    origin = min(starts, default=0.0)
    span = max((max(e for e in ends if e is not None) - origin) if ends else 0.0, 1e-6)
    width = 40
    shown = table(
        "stage", "status", "attempts", "duration", "timeline", "error / reason", plain=True
    )
    for name in run.graph or latest:
        record = latest.get(name)
        if record is None:
            shown.add_row(name, "pending", "0", "–", "", "")
            continue
        cells = [(" ", "")] * width
        for attempt in (r for r in records if r.stage == name and r.started_at is not None):
            style = _STYLE.get(str(attempt.status), "white")
            left = _cell(attempt.started_at, origin, span, width)
            ended = attempt.finished_at or origin + span
            # an interrupted attempt ends at its runner's last sign of life; dots to the reap
            right = _cell(alive_until(attempt, records, last_lines) or ended, origin, span, width)
            for cell in range(left, _cell(ended, origin, span, width) + 1):
                cells[cell] = ("█", style) if cell <= max(left, right) else ("·", "grey50")
        bar = Text.assemble(*cells)
        shown.add_row(
            Text(name),
            Text(str(record.status), style=_STYLE.get(str(record.status), "")),
            str(record.attempt),
            format_duration(record.duration) + _finalize_note(record.outputs),
            bar,
            Text(record.error_message or record.reason or ""),
        )
    out.print(shown)
    for name, record in latest.items():  # steps that ran in their own environment
        env = _python_env(record.outputs)
        if env is not None:
            out.print(
                f"{name}: environment {env.get('key')} (Python {env.get('python')}, "
                f"lock {str(env.get('lock_digest'))[:12]})",
                markup=False,
                soft_wrap=True,
            )


def _cell(at: float | None, origin: float, span: float, width: int) -> int:
    """The timeline cell (0 … width-1) of the moment ``at``."""
    return int(((at if at is not None else origin) - origin) / span * (width - 1))


def _python_env(outputs: Any) -> dict[str, Any] | None:
    """The per-step environment a step node recorded having run in, if any."""
    info = outputs.get("_node") if isinstance(outputs, dict) else None
    env = info.get("python_env") if isinstance(info, dict) else None
    return env if isinstance(env, dict) else None


_STYLE = {
    "completed": "green",
    "cached": "cyan",
    "failed": "red",
    "timed_out": "dark_orange",
    "skipped": "grey50",
    "cancelled": "magenta",
    "interrupted": "purple",
    "running": "blue",
}


def _print_logs(events: list[LogEvent]) -> None:
    for event in events:
        typer.echo(f"{event.stage} {event.stream}: {event.message}")


@app.command("logs")
def logs(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run id, a unique prefix, or latest.")],
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage's lines.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
) -> None:
    """Print what a run's stages wrote (stdout and stderr), oldest first."""
    from stepkit.state import RunStatus

    with _state(ctx) as state:
        run_id = resolve_run_id(state, run_id)
        run = state.get_run(run_id)
        if stage is not None and run.graph:
            choose(stage, run.graph, what="stage", option="--stage")
        after = 0
        running = follow
        while True:
            # Read the status before the lines: lines committed with the final status are
            # then still read by the last pass.
            if running:
                now = state.get_run(run_id)
                running = now.status == RunStatus.RUNNING and not _runner_gone(now)
            page = state.logs(run_id, stage=stage, after=after, limit=10_000)
            _print_logs(page)
            if page:
                after = page[-1].seq
                continue
            if not running:
                return
            time.sleep(0.5)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(help="The run to resume (id, unique prefix, or latest).")
    ],
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            help="MODULE:ATTR (or FILE.py:ATTR) of the pipeline or its factory; default: "
            "the source the run recorded.",
        ),
    ] = None,
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", "-j", min=1, help="Stages at once.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (no live view).")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Also write the run's HTML report (DAG and timeline) here."),
    ] = None,
) -> None:
    """Run again what a run did not finish; completed stages are kept, not re-run.

    A run of a DAG file is planned again from the DAG and config files it recorded."""
    from stepkit.pipeline.settings import RunSettings
    from stepkit.plan.execute import RunOptions, resume_run

    project = load_project(ctx)
    with _state(ctx) as state:
        run_id = resolve_run_id(state, run_id)
        earlier = [] if as_json else state.stage_records(run_id)
    settings = RunSettings(max_workers=max_workers)
    # the run's own --arg/--input/sandbox/environments come from its record
    options = RunOptions(
        executor=project.run.executor, notice=lambda line: typer.echo(line, err=True)
    )
    run_in_view(
        project,
        lambda progress: resume_run(
            project,
            run_id,
            pipeline=pipeline,
            options=options,
            settings=settings,
            progress=progress,
        ),
        as_json=as_json,
        report=report,
        earlier=earlier,
    )


@app.command("report")
def report(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(help="The run to report on (id, unique prefix, or latest).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the HTML page.")
    ] = Path("report.html"),
) -> None:
    """Write a self-contained HTML page: the DAG, a timeline of every attempt, and each
    stage's outputs, cache provenance, config, last log lines and error."""
    from stepkit.atomic import atomic_write_text

    with _state(ctx) as state:
        run_id = resolve_run_id(state, run_id)
        page = report_page(load_project(ctx), state, run_id)
    atomic_write_text(output, page)
    typer.echo(f"wrote {output}")
