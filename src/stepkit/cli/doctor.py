"""``stepkit doctor``: check every store of the project, and re-initialise a damaged one.

Each SQLite store (state, artifact catalog, step cache) is opened read-only, its schema
checked and SQLite's ``integrity_check`` run; a PostgreSQL store is asked for its tables;
the catalog index is loaded the way every command loads it. ``--reinit STORE`` is the way
out a damage message names: the damaged file is set aside (never deleted) and an empty
store takes its place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stepkit.cli.common import console, load_project, print_json

if TYPE_CHECKING:
    from stepkit.project import Project
    from stepkit.sqlite import StoreKind


@dataclass(frozen=True, slots=True)
class Finding:
    """One store and what the check found (``problems`` empty: healthy)."""

    key: str
    store: str
    location: str
    status: str  # "ok", "absent", "damaged", "unusable", "newer" (made by a newer stepkit)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _SQLiteStore:
    kind: StoreKind
    migrations: Sequence[str]
    location: Callable[[Project], str]


def _stores() -> dict[str, _SQLiteStore]:
    """The project's SQLite-backed stores, by the key ``--reinit`` takes."""
    from stepkit.artifacts import catalog
    from stepkit.artifacts.backends import catalog_location
    from stepkit.plan import cache
    from stepkit.plan.cache_backends import cache_location
    from stepkit.state import sqlite as state_sqlite

    def state_location(project: Project) -> str:
        url = project.state.url
        if not url:
            return str(project.state_dir / "state.db")
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///")).expanduser()
            return str(path if path.is_absolute() else project.root / path)
        return url

    return {
        "state": _SQLiteStore(state_sqlite.KIND, state_sqlite.MIGRATIONS, state_location),
        "artifacts": _SQLiteStore(catalog.KIND, catalog.MIGRATIONS, catalog_location),
        "cache": _SQLiteStore(cache.KIND, cache.MIGRATIONS, cache_location),
    }


def check_project(project: Project) -> list[Finding]:
    """Every store of ``project``, checked without changing any of them."""
    from stepkit.errors import StoreTooNewError
    from stepkit.postgres import is_postgres_url, redact
    from stepkit.sqlite import diagnose

    findings: list[Finding] = []
    for key, store in _stores().items():
        location = store.location(project)
        if is_postgres_url(location):
            findings.append(_check_postgres(key, store.kind.name, location, redact(location)))
            continue
        path = Path(location)
        if not path.exists():
            findings.append(Finding(key, store.kind.name, location, "absent"))
            continue
        try:
            problems = tuple(diagnose(path, kind=store.kind, migrations=store.migrations))
        except StoreTooNewError as exc:  # whole, for a newer stepkit: never to re-initialise
            findings.append(Finding(key, store.kind.name, location, "newer", (str(exc),)))
            continue
        findings.append(
            Finding(key, store.kind.name, location, "damaged" if problems else "ok", problems)
        )
    findings.append(_check_index(project))
    return findings


def _check_postgres(key: str, name: str, url: str, shown: str) -> Finding:
    from stepkit.errors import StateStoreError
    from stepkit.postgres import connect

    try:
        conn = connect(url, key=key)
    except StateStoreError as exc:
        return Finding(key, name, shown, "unusable", (str(exc),))
    with conn:
        table = {"state": "runs", "artifacts": "artifacts", "cache": "cache_entries"}[key]
        found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if found is None or found[0] is None:
        return Finding(key, name, shown, "absent")
    return Finding(key, name, shown, "ok")


def _check_index(project: Project) -> Finding:
    import sqlite3

    from stepkit.catalog.store import index_path, open_index
    from stepkit.errors import CorruptIndexError
    from stepkit.sqlite import integrity_check

    path = index_path(project)
    if not path.exists():
        return Finding("index", "catalog index", str(path), "absent")
    try:
        conn = open_index(path)
    except CorruptIndexError as exc:  # rebuilt by the next catalog command, with a warning
        return Finding("index", "catalog index", str(path), "damaged", (str(exc),))
    try:
        rows = integrity_check(conn, quick=True)
    except sqlite3.DatabaseError as exc:  # pages so damaged the check itself cannot read them
        rows = [str(CorruptIndexError(path, str(exc)))]
    finally:
        conn.close()
    if rows:
        return Finding("index", "catalog index", str(path), "damaged", tuple(rows[:5]))
    return Finding("index", "catalog index", str(path), "ok")


def doctor(
    ctx: typer.Context,
    reinit: Annotated[
        str | None,
        typer.Option(
            "--reinit",
            metavar="STORE",
            help="Set a damaged store aside and start an empty one: state, artifacts, cache.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Check every store of the project (integrity, schema); exit 1 if any is damaged."""
    project = load_project(ctx)
    if reinit is not None:
        _reinit(project, reinit)
        return
    findings = check_project(project)
    bad = [f for f in findings if f.problems]
    if as_json:
        print_json(
            [
                {
                    "store": f.key,
                    "name": f.store,
                    "location": f.location,
                    "status": f.status,
                    "problems": list(f.problems),
                }
                for f in findings
            ]
        )
    else:
        out = console()
        for f in findings:
            out.print(f"{f.store:>16}: {f.status:<8} {f.location}")
            for problem in f.problems[:10]:
                out.print(f"{'':>18}{problem}")
        damaged = [f for f in bad if f.status != "newer"]
        if damaged:
            out.print(
                f"{len(damaged)} damaged store(s): restore from a backup, or `stepkit doctor "
                "--reinit STORE` to set one aside and start empty."
            )
        if len(damaged) < len(bad):
            out.print(f"{len(bad) - len(damaged)} store(s) of a newer stepkit: upgrade stepkit.")
        if not bad:
            out.print("All stores are healthy.")
    if bad:
        raise typer.Exit(1)


def _reinit(project: Project, key: str) -> None:
    from stepkit.errors import StateStoreError
    from stepkit.names import close_matches
    from stepkit.postgres import is_postgres_url
    from stepkit.sqlite import diagnose, reinitialise

    stores = _stores()
    if key not in stores:
        hint = close_matches(key, stores)
        raise typer.BadParameter(
            f"no store {key!r}; choose one of {', '.join(stores)}"
            + (f" (did you mean {hint[0]!r}?)" if hint else ""),
            param_hint="--reinit",
        )
    store = stores[key]
    location = store.location(project)
    if is_postgres_url(location):
        raise StateStoreError(f"The {store.kind.name} is in PostgreSQL: its server keeps it whole.")
    path = Path(location)
    if not path.exists():
        raise StateStoreError(
            f"The {store.kind.name} {path} does not exist; the next command that needs it makes it."
        )
    if not diagnose(path, kind=store.kind, migrations=store.migrations):
        raise StateStoreError(
            f"The {store.kind.name} {path} is healthy; nothing to re-initialise "
            "(its records would be forgotten)."
        )
    aside = reinitialise(path, kind=store.kind, migrations=store.migrations)
    console().print(f"Set {path} aside as {aside}; an empty {store.kind.name} takes its place.")
