"""``stepkit test …``: run step scripts for real, isolated — one, a pipeline, or all.

Exit status 0 when everything passed, 1 otherwise. Never reads stdin, never prompts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stepkit.cli.common import (
    console,
    format_duration,
    load_project,
    parse_pairs,
    positive_seconds,
    print_json,
    progress_bar,
    table,
)

if TYPE_CHECKING:
    from stepkit.project import Project
    from stepkit.testing import RuntimeTester, ScriptResult

app = typer.Typer(
    help="Run step scripts in isolation on real or synthetic data.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", help="Seconds a script may run (default: [test] timeout, 300)."),
]
EnvOption = Annotated[
    list[str] | None,
    typer.Option("--env", "-e", help="KEY=VALUE for the script's environment; repeatable."),
]
ArgOption = Annotated[
    list[str] | None,
    typer.Option(
        "--arg",
        "-a",
        help="NAME=VALUE: a job argument (job_args.NAME; on a program's command line under "
        "the contract's flag); repeatable.",
    ),
]
NoSandboxOption = Annotated[
    bool,
    typer.Option(
        "--no-sandbox",
        help="Run without bubblewrap (no container paths, network on; pip still disabled).",
    ),
]
KeepOption = Annotated[
    bool, typer.Option("--keep", help="Keep the test folders of passing tests too.")
]
EnvModeOption = Annotated[
    str | None,
    typer.Option(
        "--env-mode",
        help="per-step: a step whose contract declares framework_requirements runs in its "
        "own environment (built first if missing); shared: in stepkit's. "
        "Default: [run] environments in stepkit.toml, else shared.",
    ),
]


def _tester(
    project: Project | None,
    *,
    timeout: float | None,
    env: list[str] | None,
    args: list[str] | None,
    keep: bool,
    no_sandbox: bool = False,
    rows: int = 100,
    seed: int = 0,
    env_mode: str | None = None,
) -> RuntimeTester:
    from stepkit.testing import RuntimeTester

    notices = console(stderr=True)
    tester = RuntimeTester(
        project,
        timeout=positive_seconds(timeout, option="--timeout"),
        rows=rows,
        seed=seed,
        env=parse_pairs(env, "--env"),
        args=parse_pairs(args, "--arg"),
        sandbox=not no_sandbox,
        keep=keep,
        env_mode=env_mode,
        env_notice=lambda line: notices.print(line, markup=False, soft_wrap=True),
    )
    off = tester.sandbox_off
    if off is not None and not no_sandbox:
        console(stderr=True).print(
            f"warning: the sandbox is off: {off}; container paths are not mapped, "
            "pip and proxies are disabled through the environment",
            markup=False,
            soft_wrap=True,
        )
    return tester


def _mb(value: int | None) -> str:
    return f"{value / 1e6:.1f} MB" if value else "–"


def _print_result(result: ScriptResult, *, verbose: bool, name_width: int = 0) -> None:
    """One line: status, name, time, memory, reason — in columns when ``name_width`` is the
    widest name of the lines printed together (``test pipeline``)."""
    from rich.markup import escape

    out = console()
    colour = {"PASS": "green", "FAIL": "red", "ERROR": "red", "SKIP": "yellow"}[result.status]
    head = f"[{colour}]{result.status.value:<5}[/{colour}]"
    name = escape(result.name.ljust(name_width))
    seconds = format_duration(result.wall_seconds) if result.wall_seconds else "–"
    figures = f"{seconds:>9}  {_mb(result.peak_rss_bytes):>9}"
    reason = f"  {escape(result.reason)}" if result.reason else ""
    out.print(f"{head} {name}  {figures}{reason}".rstrip())
    if not verbose:
        return
    for logical, origin in result.inputs.items():
        out.print(f"  input  {logical}: {origin}", markup=False, soft_wrap=True)
    if result.exception and result.exception.traceback:
        out.print(result.exception.traceback.rstrip(), markup=False, soft_wrap=True)
    if not result.ok:
        for name, captured in (("stdout", result.stdout), ("stderr", result.stderr)):
            if captured and captured.total_bytes:
                tail = captured.text[-2000:].rstrip()
                out.print(f"  {name} ({captured.total_bytes} bytes), last lines:", soft_wrap=True)
                out.print(tail, markup=False, soft_wrap=True)
    if result.temp_dir:
        out.print(f"  kept: {result.temp_dir}", markup=False, soft_wrap=True)


@app.command("script")
def script(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A step or pipeline node name, or a script path.")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Real inputs: one sub-folder per logical input name.", file_okay=False
        ),
    ] = None,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows of synthetic CSV.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of synthetic data.")] = 0,
    env: EnvOption = None,
    arg: ArgOption = None,
    no_sandbox: NoSandboxOption = False,
    timeout: TimeoutOption = None,
    keep: KeepOption = False,
    env_mode: EnvModeOption = None,
    fast: Annotated[
        bool,
        typer.Option("--fast", help="Only import and check main, in this process: no isolation."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Test one script: it imports, has main(input_paths, output_paths, environ_vars,
    job_args), and runs on data writing every output its contract promises."""
    from stepkit.errors import ProjectNotFoundError

    try:
        project: Project | None = load_project(ctx)
    except ProjectNotFoundError:
        if not (name.endswith(".py") or "/" in name):
            raise
        project = None  # a script outside any project: import check only
    if data is not None and not data.is_dir():
        raise typer.BadParameter(f"{data} is not a folder", param_hint="--data")
    tester = _tester(
        project,
        timeout=timeout,
        env=env,
        args=arg,
        keep=keep,
        no_sandbox=no_sandbox,
        rows=rows,
        seed=seed,
        env_mode=env_mode,
    )
    result = tester.test_script(name, data=data, fast=fast)
    if as_json:
        print_json(result.to_json())
    else:
        _print_result(result, verbose=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("pipeline")
def pipeline(
    ctx: typer.Context,
    dag_file: Annotated[
        Path, typer.Argument(help="YAML with nodes: [...] and edges: [[from, to], ...].")
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="NODE.INPUT=PATH: give a node's input from a local file or folder instead "
            "of an upstream output or synthetic data; repeatable.",
        ),
    ] = None,
    env: EnvOption = None,
    arg: ArgOption = None,
    no_sandbox: NoSandboxOption = False,
    timeout: TimeoutOption = None,
    keep: KeepOption = False,
    env_mode: EnvModeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a DAG's scripts in order, each on what its upstream steps wrote; report the
    first data-flow break."""
    tester = _tester(
        load_project(ctx),
        timeout=timeout,
        env=env,
        args=arg,
        keep=keep,
        no_sandbox=no_sandbox,
        env_mode=env_mode,
    )
    result = tester.test_pipeline(dag_file, data=parse_pairs(data, "--data"))
    if as_json:
        print_json(result.to_json())
    else:
        width = max((len(step.name) for step in result.steps), default=0)
        for step in result.steps:
            verbose = not step.ok and step.status.value != "SKIP"
            _print_result(step, verbose=verbose, name_width=width)
        if result.first_break:
            console().print(f"first data-flow break: {result.first_break}", markup=False)
        if result.temp_dir:
            console().print(f"kept: {result.temp_dir}", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("all")
def test_all(
    ctx: typer.Context,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only scripts of this workspace.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Tests run at once.")] = 2,
    env: EnvOption = None,
    arg: ArgOption = None,
    no_sandbox: NoSandboxOption = False,
    timeout: TimeoutOption = None,
    keep: KeepOption = False,
    env_mode: EnvModeOption = None,
    as_json: JsonOption = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML here (for CI).")
    ] = None,
) -> None:
    """Test every step that has a script, in parallel; a summary table."""
    tester = _tester(
        load_project(ctx),
        timeout=timeout,
        env=env,
        args=arg,
        keep=keep,
        no_sandbox=no_sandbox,
        env_mode=env_mode,
    )
    with progress_bar(disable=as_json) as progress:
        task = progress.add_task("testing scripts", total=None)
        results = tester.test_all(
            workspace=workspace, jobs=jobs, on_result=lambda _: progress.advance(task)
        )
    if junit is not None:
        from stepkit.atomic import atomic_write_text
        from stepkit.testing.report import junit_xml

        atomic_write_text(junit, junit_xml(results))
    if as_json:
        print_json([r.to_json() for r in results])
    else:
        _print_table(results)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _print_table(results: list[ScriptResult]) -> None:
    from rich.text import Text

    passed = sum(r.ok for r in results)
    shown = table(
        "status",
        "step",
        "time",
        "peak memory",
        "reason",
        title=f"{passed}/{len(results)} passed ({len({r.script for r in results})} scripts)",
    )
    for r in results:
        shown.add_row(
            r.status.value,
            Text(r.name),
            format_duration(r.wall_seconds),
            _mb(r.peak_rss_bytes),
            Text(r.reason),
        )
    out = console()
    out.print(shown)
    for r in results:
        if r.temp_dir:
            out.print(f"kept {r.name}: {r.temp_dir}", markup=False)
