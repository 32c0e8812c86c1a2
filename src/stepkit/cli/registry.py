"""``stepkit registry …``: list, show, check, conflicts and export step definitions."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stepkit.cli.common import choose, console, load_project, print_json, table, unknown_step

if TYPE_CHECKING:
    from stepkit.registry import Registry, StepDefinition

app = typer.Typer(
    help="Canonical step names and their definitions, per workspace.", no_args_is_help=True
)

WorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--workspace", "-w", help="View the registry as this workspace sees it (default: core)."
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (format in docs/json-output.md).")
]


def _registry(ctx: typer.Context) -> Registry:
    from stepkit.registry import Registry

    return Registry.load(load_project(ctx))


def definition_json(d: StepDefinition) -> dict[str, Any]:
    """One definition as ``--json`` prints it."""
    return {
        "name": d.name,
        **d.as_dict(),
        "job_types": list(d.job_types),
        "workspace_id": d.workspace_id,
        "source": str(d.origin) if d.origin else None,
        "overridden_fields": list(d.overridden_fields),
    }


@app.command("list")
def list_steps(
    ctx: typer.Context,
    workspace: WorkspaceOption = None,
    step_type: Annotated[
        str | None, typer.Option("--type", "-t", help="Only steps of this sagemaker_step_type.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every step the registry defines, as a workspace sees it."""
    registry = _registry(ctx)
    view = registry.view(workspace)
    steps = [d for _, d in sorted(view.items())]
    if step_type:
        _check_step_type(step_type, {d.sagemaker_step_type for d in steps})
        steps = [d for d in steps if d.sagemaker_step_type == step_type]
    if as_json:
        print_json({"workspace": workspace, "steps": [definition_json(d) for d in steps]})
        return
    from rich.text import Text

    title = f"Steps ({workspace or registry.core_id} view): {len(steps)}"
    shown = table("name", "type", "config class", "builder", "from", title=title)
    for d in steps:
        origin = d.workspace_id + (
            f" (overrides {', '.join(d.overridden_fields)})" if d.overridden_fields else ""
        )
        cells = (d.name, d.sagemaker_step_type, d.config_class, d.builder_step_name, origin)
        shown.add_row(*(Text(cell) for cell in cells))
    console().print(shown)


def _check_step_type(step_type: str, in_use: set[str]) -> None:
    """A ``--type`` that is neither a known step type nor one a step uses is a typo: exit 2
    with the closest names, rather than an empty table that reads as "no such steps"."""
    from stepkit.registry import KNOWN_STEP_TYPES

    choose(step_type, {*KNOWN_STEP_TYPES, *in_use}, what="step type", option="--type")


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Canonical step name, e.g. TabularPreprocessing.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one step's definition and where it was written."""
    from stepkit.errors import UnknownStepError

    registry = _registry(ctx)
    try:
        d = registry.get(name, workspace)
    except UnknownStepError as exc:
        unknown_step(exc, registry.view(workspace))
    data = definition_json(d)
    if as_json:
        print_json(data)
        return
    from rich.markup import escape

    out = console()
    out.print(f"[bold]{d.name}[/bold]  {escape(d.description)}")
    for key in (
        "config_class",
        "builder_step_name",
        "spec_type",
        "sagemaker_step_type",
        "job_types",
        "workspace_id",
        "source",
        "overridden_fields",
    ):
        value = data[key]
        if value or value == 0:
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            out.print(f"  {key:<20} {shown}", markup=False)


@app.command("check")
def check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check names, spec types, step types and unique class names; exit 1 on errors."""
    from stepkit.registry import check_registry

    problems = check_registry(_registry(ctx))
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        print_json(
            [
                {
                    "severity": p.severity,
                    "step": p.step,
                    "message": p.message,
                    "source": str(p.origin) if p.origin else None,
                }
                for p in problems
            ]
        )
    else:
        for problem in problems:
            typer.echo(str(problem))
        typer.echo(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    if errors:
        raise typer.Exit(1)


@app.command("conflicts")
def conflicts(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """What each workspace adds to the core, overrides in it, and shadows of another workspace."""
    reports = _registry(ctx).reports()
    if as_json:
        print_json(
            [
                {
                    "workspace_id": r.workspace_id,
                    "source": str(r.source) if r.source else None,
                    "is_core": r.is_core,
                    "defines": list(r.defines),
                    "overrides": [
                        {
                            "name": o.name,
                            "source": str(o.origin),
                            "fields": {
                                k: {"core": old, "new": new} for k, (old, new) in o.fields.items()
                            },
                        }
                        for o in r.overrides
                    ],
                    "shadows": {k: list(v) for k, v in r.shadows.items()},
                }
                for r in reports
            ]
        )
        return
    from rich.markup import escape

    out = console()
    for r in reports:
        source = escape(str(r.source or "no registry file"))
        if r.is_core:
            out.print(
                f"[bold]{r.workspace_id}[/bold] (core, {source}): defines {len(r.defines)} steps"
            )
            continue
        out.print(f"[bold]{r.workspace_id}[/bold] ({source})")
        if not (r.defines or r.overrides):
            out.print("  nothing: sees the core registry as it is")
        for name in r.defines:
            shadow = f" — also added by {', '.join(r.shadows[name])}" if name in r.shadows else ""
            out.print(f"  adds      {name}{shadow}", markup=False)
        for o in r.overrides:
            changes = "; ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in o.fields.items())
            out.print(f"  overrides {o.name}: {changes}  ({o.origin})", markup=False)


class ExportFormat(StrEnum):
    json = "json"
    python = "python"


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="json, or python (a literal STEP_NAMES module)."),
    ] = ExportFormat.json,
    workspace: WorkspaceOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (atomically) instead of stdout."),
    ] = None,
) -> None:
    """Export the registry as one workspace sees it."""
    from stepkit.registry.export import render_json, render_python

    registry = _registry(ctx)
    text = (
        render_json(registry, workspace)
        if fmt is ExportFormat.json
        else render_python(registry, workspace)
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    from stepkit.atomic import atomic_write_text

    atomic_write_text(output, text)
    typer.echo(f"wrote {output}", err=True)
