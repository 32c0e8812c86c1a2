"""``stepkit env …``: build, list and prune the steps' virtual environments."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from stepkit.cli.common import console, load_project, print_json

if TYPE_CHECKING:
    from stepkit.envs import EnvSpec, EnvStore
    from stepkit.envs.build import Progress

app = typer.Typer(
    help="The virtual environments steps run in, built from their contracts' requirements.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
#: A build folder untouched this long belongs to a build that died; prune may remove it.
STALE_BUILD_SECONDS = 3600.0


def step_specs(ctx: typer.Context, names: Sequence[str] = ()) -> dict[str, EnvSpec]:
    """Step name → the environment its contract declares (only steps that declare one).

    The one place this command group reads the catalog: the steps, and each one's contract.
    """
    from stepkit.catalog.models import contract_of
    from stepkit.cli.catalog import open_catalog
    from stepkit.envs.spec import wanted_spec

    catalog = open_catalog(ctx)
    wanted = list(names) or catalog.list_available_steps()
    specs: dict[str, EnvSpec] = {}
    for name in wanted:
        contract = contract_of(catalog, name)
        spec = wanted_spec(contract) if contract is not None else None
        if spec is not None:
            specs[name] = spec
        elif names:
            typer.echo(
                f"{name}: declares no framework_requirements (nor another python); it runs "
                "in stepkit's own environment.",
                err=True,
            )
    return specs


def _store(ctx: typer.Context) -> EnvStore:
    from stepkit.envs import EnvStore, default_root

    return EnvStore(default_root(load_project(ctx)))


@dataclass(frozen=True, slots=True)
class _Built:
    steps: tuple[str, ...]
    key: str
    python: str
    status: str  # "built", "reused"
    seconds: float


@app.command("build")
def build(
    ctx: typer.Context,
    steps: Annotated[
        list[str] | None, typer.Argument(help="Steps to build for (default: every step).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build the environment of each step whose contract declares framework_requirements.

    Steps with equal requirements share one environment; a built one is reused.
    """
    from stepkit.envs import ensure_environment
    from stepkit.errors import StepkitError

    store = _store(ctx)
    by_spec: dict[EnvSpec, list[str]] = {}
    for name, spec in step_specs(ctx, steps or ()).items():
        by_spec.setdefault(spec, []).append(name)
    results: list[_Built] = []
    errors: list[str] = []
    for spec, names in by_spec.items():
        started = time.perf_counter()
        existing = store.lookup(spec, touch=False)
        try:
            with _progress(f"{', '.join(names)}: {spec.describe()}") as say:
                environment = existing or ensure_environment(spec, store=store, progress=say)
        except StepkitError as exc:
            errors.append(f"{', '.join(names)}: {exc}")
            continue
        results.append(
            _Built(
                steps=tuple(names),
                key=environment.key,
                python=environment.python_version,
                status="reused" if existing else "built",
                seconds=time.perf_counter() - started,
            )
        )
    if as_json:
        print_json(
            [
                {
                    "steps": list(r.steps),
                    "key": r.key,
                    "python": r.python,
                    "status": r.status,
                    "seconds": round(r.seconds, 3),
                }
                for r in results
            ]
        )
    else:
        for r in results:
            typer.echo(
                f"{r.status:6}  {r.key}  Python {r.python}  {', '.join(r.steps)}"
                f"  ({r.seconds:.1f} s)"
            )
        if not results and not errors and not steps:
            typer.echo("No step declares framework_requirements: nothing to build.")
    for message in errors:
        typer.echo(f"error: {message}", err=True)
    if errors:
        raise typer.Exit(1)


@contextmanager
def _progress(title: str) -> Iterator[Progress]:
    """A spinner with the build's current action on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield lambda _message: None
        return
    with console(stderr=True).status(title) as status:

        def say(message: str) -> None:
            status.update(f"{title} — {message}")

        yield say


@app.command("list")
def list_envs(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the built environments: requirements, interpreter, steps, size, last use."""
    store = _store(ctx)
    users = _users(store, step_specs(ctx))
    usages = [store.usage(environment) for environment in store.environments()]
    if as_json:
        print_json(
            {
                "root": str(store.root),
                "environments": [
                    {
                        "key": u.environment.key,
                        "python": u.environment.python_version,
                        "requirements": list(u.environment.requirements),
                        "steps": sorted(users.get(u.environment.key, [])),
                        "size": u.size,
                        "last_used": u.last_used.isoformat(timespec="seconds"),
                        "exclude_newer": (
                            u.environment.exclude_newer.isoformat()
                            if u.environment.exclude_newer
                            else None
                        ),
                        "identity": u.environment.identity,
                        "path": str(u.environment.path),
                    }
                    for u in usages
                ],
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"Environments in {store.root}: {len(usages)}")
    for column in ("key", "python", "requirements", "steps", "size", "last used"):
        table.add_column(column)
    for u in usages:
        table.add_row(
            u.environment.key,
            u.environment.python_version,
            "\n".join(u.environment.requirements),
            ", ".join(sorted(users.get(u.environment.key, []))) or "-",
            _size(u.size),
            u.last_used.astimezone().strftime("%Y-%m-%d %H:%M"),
        )
    console().print(table)


@app.command("prune")
def prune(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Delete for real (default: only say what would go).")
    ] = False,
    older_than: Annotated[
        float, typer.Option("--older-than", help="Only environments unused for this many days.")
    ] = 0.0,
) -> None:
    """Remove environments no step of this project uses (a dry run unless --apply).

    Also removes the folders of builds that died and pointers to removed environments.
    The folder is the user's cache, shared between projects: use --older-than to keep
    what other projects used recently.
    """
    import shutil

    store = _store(ctx)
    used = set(_users(store, step_specs(ctx)))
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than)
    doomed = []
    for environment in store.environments():
        usage = store.usage(environment)
        if environment.key not in used and usage.last_used <= cutoff:
            doomed.append(usage)
    stale = [
        folder
        for folder in store.temp_folders()
        if time.time() - folder.stat().st_mtime > STALE_BUILD_SECONDS
    ]
    verb = "removed" if apply else "would remove"
    for usage in doomed:
        environment = usage.environment
        typer.echo(
            f"{verb} {environment.key}  Python {environment.python_version}  "
            f"{', '.join(environment.requirements)}  ({_size(usage.size)})"
        )
        if apply:
            store.remove(environment.key)
    for folder in stale:
        typer.echo(f"{verb} {folder.name}  (an unfinished build)")
        if apply:
            shutil.rmtree(folder, ignore_errors=True)
    for digest in store.dangling_pointers():
        typer.echo(f"{verb} specs/{digest[:16]}…  (points to an environment that is gone)")
        if apply:
            store.remove_pointer(digest)
    total = sum(usage.size for usage in doomed)
    summary = f"{len(doomed)} environment(s), {_size(total)}"
    if apply:
        typer.echo(f"Pruned {summary}.")
    else:
        typer.echo(f"Would prune {summary}; run with --apply to delete.")


def _users(store: EnvStore, specs: dict[str, EnvSpec]) -> dict[str, list[str]]:
    """Environment key → the project's steps whose requirements it was built for."""
    pointers = store.pointers()
    users: dict[str, list[str]] = {}
    for name, spec in specs.items():
        key = pointers.get(spec.digest)
        if key is not None:
            users.setdefault(key, []).append(name)
    return users


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
