"""``stepkit plan`` and ``stepkit run``: a DAG of catalogued steps, planned and run.

Each command is one library call (:func:`stepkit.plan_dag`, :func:`stepkit.run_dag`); this
module parses the options, calls, and prints. The live view is drawn from the run's own
progress events, so two runs of one DAG at once each show their own stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stepkit.cli.common import (
    choose,
    console,
    load_project,
    parse_pairs,
    positive_seconds,
    print_json,
    table,
)
from stepkit.cli.runview import run_in_view

if TYPE_CHECKING:
    from stepkit.project import Project
    from stepkit.state.records import StageRecord

DagArgument = Annotated[
    Path,
    typer.Argument(help="The DAG file (YAML, or JSON: *.dag.json): nodes and edges.", exists=False),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Pipeline config file (YAML or JSON): shared and per-node values."
    ),
]
InputsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        help="NODE.INPUT=PATH: give a node's input from a local file or folder (stored, "
        "and part of the node's cache key) instead of an upstream output; repeatable.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (no live view).")
]
ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Also write the run's HTML report (DAG and timeline) here."),
]


def plan(
    ctx: typer.Context,
    dag_file: DagArgument,
    config_file: ConfigOption = None,
    inputs: InputsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Resolve every node, validate its config and wire its inputs; nothing runs."""
    from stepkit.plan.execute import plan_dag
    from stepkit.plan.seeds import parse_seeds

    given = parse_pairs(inputs, "--input")
    planned = plan_dag(load_project(ctx), dag_file, config=config_file, seeded=frozenset(given))
    contracts = {name: node.contract for name, node in planned.nodes.items()}
    rows = planned.wiring_rows()
    for node, seeds in parse_seeds(given, contracts, option="--input").items():
        for logical, path in seeds.items():
            rows.append(
                {"node": node, "input": logical, "from": str(path), "score": None, "why": "--input"}
            )
    if as_json:
        print_json(
            {
                "dag": planned.dag.name,
                "metadata": planned.dag.metadata,
                "order": list(planned.nodes),
                "nodes": {
                    name: {
                        "step": n.step,
                        "job_type": n.job_type,
                        "workspace_id": n.workspace_id,
                        "runs": n.how,
                        "outputs": list(n.outputs),
                        "environment": dict(n.environment),
                        "arguments": dict(n.arguments),
                    }
                    for name, n in planned.nodes.items()
                },
                "wiring": rows,
                "notes": [str(note) for note in planned.notes],
            }
        )
        return
    from rich.text import Text

    out = console()
    for key, value in planned.dag.metadata.items():
        if key == "name":  # the table's title
            continue
        out.print(f"{key}: {value}", markup=False, soft_wrap=True)
    title = f"{planned.dag.name}: {len(planned.nodes)} nodes, {len(rows)} inputs wired"
    shown = table("node", "input", "from", "score", "why", title=title)
    for row in rows:
        score = "–" if row["score"] is None else f"{row['score']:.2f}"
        cells = (row["node"], row["input"], row["from"], score, row["why"])
        shown.add_row(*(Text(str(cell)) for cell in cells))
    out.print(shown)
    for note in planned.notes:
        out.print(f"note: {note}", markup=False)
    out.print("order: " + " → ".join(planned.nodes), markup=False)


def run(
    ctx: typer.Context,
    dag_file: DagArgument,
    config_file: ConfigOption = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            "-e",
            help="local: each step in a fresh process (isolated); "
            "process: a pool of reused worker processes; "
            "dask-local: a Dask LocalCluster started for the run; "
            "dask://HOST:PORT: the workers of a running Dask scheduler. "
            "Default: [run] executor in stepkit.toml, else local.",
        ),
    ] = None,
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", "-j", min=1, help="Steps running at once.")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Resume this run: keep what completed, run the rest."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, even when its cache entry matches.")
    ] = False,
    refresh: Annotated[
        list[str] | None,
        typer.Option("--refresh", help="Run this node even on a cache hit (repeatable)."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds a step may run before it is killed.")
    ] = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop the run at the first failure.")
    ] = False,
    keep_temp: Annotated[
        bool, typer.Option("--keep-temp", help="Keep the steps' temp folders.")
    ] = False,
    env_mode: Annotated[
        str | None,
        typer.Option(
            "--env-mode",
            help="per-step: a script step whose contract declares framework_requirements "
            "runs in its own environment (built first if missing); shared: in stepkit's. "
            "Default: [run] environments in stepkit.toml, else shared.",
        ),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option(
            "--arg",
            "-a",
            help="NAME=VALUE: a job argument for every script step (job_args.NAME; on a "
            "program's command line under the contract's flag); wins over the config; repeatable.",
        ),
    ] = None,
    inputs: InputsOption = None,
    sandbox: Annotated[
        bool | None,
        typer.Option(
            "--sandbox/--no-sandbox",
            help="Run script steps under bubblewrap: container paths mapped, network cut, the "
            "rest read-only (default: [run] sandbox in stepkit.toml, else off).",
        ),
    ] = None,
    as_json: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Run a DAG of catalogued steps: cached steps are reused, the rest run isolated."""
    from stepkit.pipeline.settings import RunSettings
    from stepkit.plan.execute import RunOptions, run_dag

    if executor is not None and not executor.startswith("dask://"):  # HOST:PORT checked below
        executor = choose(
            executor,
            ("local", "process", "dask-local"),
            what="executor",
            option="--executor",
            forms=("dask://HOST:PORT",),
        )
    project = load_project(ctx)
    options = RunOptions(
        executor=executor or project.run.executor,
        no_cache=no_cache,
        refresh=frozenset(refresh or ()),
        timeout=positive_seconds(timeout, option="--timeout"),
        env_mode=env_mode,
        notice=lambda line: typer.echo(line, err=True),
        args=parse_pairs(arg, "--arg"),
        sandbox=sandbox,
        inputs=parse_pairs(inputs, "--input"),
    )
    settings = RunSettings(max_workers=max_workers, fail_fast=fail_fast, keep_temp=keep_temp)
    earlier = [] if as_json or resume is None else _recorded_stages(project, resume)
    run_in_view(
        project,
        lambda progress: run_dag(
            project,
            dag_file,
            config=config_file,
            options=options,
            settings=settings,
            resume=resume,
            progress=progress,
        ),
        as_json=as_json,
        report=report,
        earlier=earlier,
    )


def _recorded_stages(project: Project, run_id: str) -> list[StageRecord]:
    """What the resumed run already has, so the live view shows kept stages as done."""
    from stepkit.state import open_state

    state = open_state(project)
    try:
        return state.stage_records(run_id)
    finally:
        state.close()
