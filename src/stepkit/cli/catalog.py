"""``stepkit catalog …``: list, show, search, which, variants, check, index, watch."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stepkit.cli.common import choose, load_project, print_json, progress_bar, unknown_step

if TYPE_CHECKING:
    from stepkit.catalog import StepCatalog, StepInfo

app = typer.Typer(
    help="Every step of every workspace: its components, variants and problems.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JobTypeOption = Annotated[
    str | None, typer.Option("--job-type", "-j", help="Only this job type (e.g. training).")
]


def open_catalog(ctx: typer.Context, *, rebuild: bool = False) -> StepCatalog:
    """The project's catalog; a large (re)build shows progress on a terminal."""
    from stepkit.catalog import StepCatalog

    project = load_project(ctx)
    if not sys.stderr.isatty():
        catalog = StepCatalog(project, rebuild=rebuild)
    else:
        with progress_bar() as bar:
            task = bar.add_task("indexing step files", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            catalog = StepCatalog(project, rebuild=rebuild, progress=progress)
    for warning in catalog.last_refresh.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return catalog


def write_rows_json(key: str, rows: list[str]) -> None:
    """A JSON object holding one list of JSON texts, one per line: readable, and fast
    (the rows are the index's own texts, written as they are)."""
    out = sys.stdout
    out.write(f'{{"{key}": [\n' + ",\n".join(rows) + "\n]}\n" if rows else f'{{"{key}": []}}\n')


def print_table(headers: list[str], rows: list[list[str]], *, title: str = "") -> None:
    """Columns padded to their widest cell: a table that prints 10,000 rows at once
    (laying out a Rich table costs a millisecond a row)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [title] if title else []
    out += [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    sys.stdout.write("\n".join(out) + "\n")


@app.command("list")
def list_steps(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", help="Only steps with a component in this workspace."),
    ] = None,
    job_type: JobTypeOption = None,
    step_type: Annotated[
        str | None, typer.Option("--type", "-t", help="Only this sagemaker_step_type.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every step: its workspace, type, job types, components and completeness."""
    catalog = open_catalog(ctx)
    rows = catalog.list_rows(workspace, job_type, step_type)
    if not rows and (job_type or step_type):
        check_filters(catalog, job_type=job_type, step_type=step_type)
    if as_json:
        write_rows_json("steps", [row.text for row in rows])
        return
    cells = []
    for row in rows:
        data = row.as_json()
        state = "yes" if data["complete"] else f"no: missing {', '.join(data['missing'])}"
        if data.get("broken") and not data["missing"]:
            state = f"no: unreadable {', '.join(data['broken'])}"
        if not data["registered"]:
            state = "unregistered"
        elif data.get("abstract"):
            state = "abstract (no files expected)"
        components = " ".join(sorted(data["components"]))
        cells.append(
            [
                row.name,
                row.step_type or "-",
                row.workspace_id,
                ", ".join(data["job_types"]),
                components,
                state,
            ]
        )
    headers = ["name", "type", "workspace", "job types", "components", "complete"]
    print_table(headers, cells, title=f"Steps: {len(rows)}")


def check_filters(
    catalog: StepCatalog, *, job_type: str | None, step_type: str | None = None
) -> None:
    """A ``--job-type`` or ``--type`` no step has and no project knows is a typo: exit 2
    with the closest values, rather than an empty answer that reads as "no such steps"."""
    from stepkit.names import STANDARD_JOB_TYPES
    from stepkit.registry import KNOWN_STEP_TYPES

    rows = [row.as_json() for row in catalog.list_rows()]
    if job_type is not None:
        known = {*STANDARD_JOB_TYPES, *(j for row in rows for j in row["job_types"])}
        choose(job_type, known, what="job type", option="--job-type")
    if step_type is not None:
        in_use = {row["step_type"] for row in rows if row["step_type"]}
        choose(step_type, {*KNOWN_STEP_TYPES, *in_use}, what="step type", option="--type")


def _info(catalog: StepCatalog, name: str, job_type: str | None = None) -> StepInfo:
    """The step (or node) ``name`` names, with wider suggestions when it names none."""
    from stepkit.errors import UnknownStepError

    try:
        return catalog.get_step_info(name, job_type)
    except UnknownStepError as exc:
        unknown_step(exc, catalog.step_names())


def _print_info(
    info: StepInfo, *, show_all: bool, metadata: Mapping[str, Any] | None = None
) -> None:
    d = info.definition
    kind = info.step_type or "unregistered"
    layout = ", interface layout" if info.layout == "interface" else ""
    lines = [f"{info.node_name} ({kind}, from {info.workspace_id}{layout})"]
    if d is not None and d.description:
        lines.append(f"  {d.description}")
    if info.job_types:
        lines.append(f"  job types: {', '.join(info.job_types)}")
    missing = ", ".join(info.missing) or "registry entry"
    if info.is_complete:
        lines.append("  complete")
    elif info.missing or not info.broken:
        lines.append(f"  missing {missing}")
    lines += [f"  incomplete: {c} {why}" for c, why in info.broken.items()]
    typer.echo("\n".join(lines))
    files = [f for c, f in info.components.items() if c != "spec"]
    files += list(info.specs.values())
    if show_all:
        files += list(info.shadowed)
    effective = {id(f) for f in (*info.components.values(), *info.specs.values())}
    rows = [
        [
            f.component if id(f) in effective else f"{f.component} (shadowed)",
            f.job_type or "",
            f.workspace_id,
            f.via,
            f.location,
        ]
        for f in files
    ]
    print_table(["component", "job type", "workspace", "matched by", "path"], rows)
    if info.shadowed and not show_all:
        typer.echo(f"  {len(info.shadowed)} shadowed file(s): use --all")
    for key, value in (metadata or {}).items():  # how the framework builds the cloud job
        typer.echo(f"{key}:\n" + "\n".join(f"  {line}" for line in _yaml_lines(value)))


def _yaml_lines(value: Any) -> list[str]:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).splitlines()


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Step name or pipeline node (Foo_training).")],
    job_type: JobTypeOption = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            "-a",
            help="Also the files shadowed: by earlier workspaces, or by an interface file.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show a step's components, with the workspace each came from (and an interface
    file's compute and patterns metadata, and the step's environment if it declares one)."""
    from stepkit.catalog.models import interface_of
    from stepkit.cli.envshow import environment_summary, print_environment_summary

    catalog = open_catalog(ctx)
    info = _info(catalog, name, job_type)
    interface = interface_of(catalog, info.node_name) if info.layout == "interface" else None
    metadata = dict(interface.metadata) if interface is not None else {}
    environment = environment_summary(catalog, info.name)  # its own, if it declares one
    if as_json:
        print_json(
            info.as_json(with_shadowed=show_all)
            | {"metadata": metadata, "environment": environment}
        )
        return
    _print_info(info, show_all=show_all, metadata=metadata)
    if environment is not None:
        print_environment_summary(environment, step=info.name)


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words, a name, or an abbreviation (xgb, eval).")],
    job_type: JobTypeOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Find steps by name, abbreviation or description, ranked, with why each matched."""
    catalog = open_catalog(ctx)
    results = catalog.search_steps(query, job_type, limit=limit)
    if not results and job_type:
        check_filters(catalog, job_type=job_type)
    if as_json:
        print_json(
            [
                {
                    "name": r.step_name,
                    "score": r.score,
                    "reason": r.reason,
                    "matches": list(r.matches),
                    "workspace_id": r.workspace_id,
                }
                for r in results
            ]
        )
        return
    if not results:
        typer.echo(f"no step matches {query!r}")
        return
    rows = [
        [r.step_name, f"{r.score:.1f}", r.reason, r.explanation, r.workspace_id] for r in results
    ]
    print_table(["step", "score", "match", "why", "workspace"], rows)


@app.command("which")
def which(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A component file.")],
    as_json: JsonOption = False,
) -> None:
    """Which step(s) a component file belongs to; exit 1 if none."""
    catalog = open_catalog(ctx)
    steps = catalog.find_steps_by_component(file)
    if as_json:
        print_json({"path": str(file), "steps": steps})
    elif steps:
        typer.echo("\n".join(steps))
    else:
        typer.echo(f"{file} belongs to no step", err=True)
    if not steps:
        raise typer.Exit(1)


@app.command("variants")
def variants(
    ctx: typer.Context,
    base: Annotated[str, typer.Argument(help="Base step name.")],
    as_json: JsonOption = False,
) -> None:
    """A step's job-type variants, and the components they share."""
    catalog = open_catalog(ctx)
    info = _info(catalog, base)
    shared = catalog.get_shared_components(base)
    if as_json:
        print_json(
            {
                "name": info.name,
                "job_types": list(info.job_types),
                "nodes": [f"{info.name}_{j}" for j in info.job_types],
                "specs": {(j or ""): f.as_json() for j, f in info.specs.items()},
                "shared": {c: (f.as_json() if f else None) for c, f in shared.items()},
            }
        )
        return
    lines = [f"{info.name}: {len(info.job_types)} job type(s)"]
    for job in info.job_types:
        spec = info.specs.get(job) or info.specs.get(None)
        where = f"{spec.path} ({spec.workspace_id})" if spec else "no spec"
        lines.append(f"  {info.name}_{job:<14} spec: {where}")
    for component, f in shared.items():
        if f is not None:
            lines.append(f"  shared {component:<12} {f.path} ({f.workspace_id})")
    typer.echo("\n".join(lines))


@app.command("check")
def check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Report broken, unmatched and unregistered files, incomplete steps, and scripts whose
    main reads what their contract does not declare; exit 1 if any."""
    from stepkit.catalog import find_problems
    from stepkit.testing.alignment import alignment_problems

    catalog = open_catalog(ctx)
    problems = [*find_problems(catalog), *alignment_problems(catalog)]
    if as_json:
        print_json([p.as_json() for p in problems])
    else:
        for problem in problems:
            typer.echo(f"{problem.kind}: {problem}")
        typer.echo(f"{len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


@app.command("convert")
def convert(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="The layout to write: interface.")],
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only this workspace (default: all).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the files that would be written; write none.")
    ] = False,
) -> None:
    """Write interface files (interfaces/<stem>.step.yaml) from classic contracts, specs and
    registry rows; the classic files are left for you to delete."""
    from stepkit.catalog.convert import plan_conversion, write_conversion

    if to != "interface":
        raise typer.BadParameter(f"{to!r}: the only layout to convert to is 'interface'")
    catalog = open_catalog(ctx)
    spaces = [workspace] if workspace else list(catalog.project.workspace_ids)
    planned = [c for ws in spaces for c in plan_conversion(catalog, ws)]
    for c in planned:
        if c.skipped:
            typer.echo(f"skip {c.step} ({c.workspace_id}): {c.skipped}")
        elif dry_run:
            typer.echo(f"would write {c.path}:\n{c.text}")
    written = [] if dry_run else write_conversion(planned)
    for path in written:
        typer.echo(f"wrote {path}")
    count = sum(1 for c in planned if not c.skipped)
    typer.echo(f"{count} interface file(s) {'to write' if dry_run else 'written'}")


@app.command("index")
def index(
    ctx: typer.Context,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Ignore the saved index and parse every file.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring the persisted index up to date and say what that took."""
    catalog = open_catalog(ctx, rebuild=rebuild)
    if not rebuild:
        catalog.session.ensure_walked()  # every file looked at, not only the folders
    r = catalog.last_refresh
    (files,) = catalog.session.conn.execute("SELECT count(*) FROM files").fetchone()
    data = {
        "path": str(catalog.session.path or ":memory:"),
        "files": files,
        "steps": len(catalog.step_names()),
        "parsed": r.parsed,
        "reused": r.reused,
        "removed": r.removed,
        "resolved_again": r.resolved_again,
        "saved": r.saved,
    }
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"{data['files']} files, {data['steps']} steps: parsed {r.parsed}, reused {r.reused}, "
        f"removed {r.removed} ({data['path']})"
    )


@app.command("watch")
def watch(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """Keep the index current as files change (Ctrl-C to stop); one line per update."""
    import json

    from stepkit.catalog.watch import watch_catalog

    catalog = open_catalog(ctx)
    typer.echo(f"watching {len(catalog.project.workspaces)} workspace(s)", err=True)
    for update in watch_catalog(catalog):
        if as_json:
            typer.echo(json.dumps(update.as_json(), sort_keys=True))
        else:
            typer.echo(f"{update.touched} file(s) changed: {', '.join(update.paths[:3])}")
