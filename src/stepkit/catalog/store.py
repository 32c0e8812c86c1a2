"""The catalog index: one SQLite file, ``<state_dir>/catalog/index.sqlite``.

Tables: ``folders`` (each walked folder's own stat and a digest of its files' stat rows),
``files`` (a file of some kind — a component, for now — its stat row and its summary as
JSON), ``placements`` (the resolved steps: which file is which component of which step),
``links`` (the keys each file touches, for incremental resolution), ``listing`` (what
``catalog list`` prints, and the words ``search`` matches), ``definitions`` (the
registry as the catalog sees it), ``registry_sources`` (parsed registry files, keyed by
their stat), ``file_problems``, ``unmatched``, ``walk_problems`` and ``meta``. Opened
through :mod:`stepkit.sqlite` (WAL, busy timeout, migrations by ``user_version``);
every refresh is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.catalog.records import COMPONENTS, ComponentFile, ListRow, required_components
from stepkit.catalog.resolution import FileProblem, Parts, Resolution, Unmatched
from stepkit.catalog.search import words
from stepkit.errors import CorruptIndexError, StateStoreError
from stepkit.names import pascal_to_snake
from stepkit.registry.sources import INDEX_FILE
from stepkit.sqlite import connect, migrate

if TYPE_CHECKING:
    from stepkit.project import Project
    from stepkit.registry.definitions import StepDefinition

#: What ``meta.format`` says in a catalog index (a file without it is someone else's).
FORMAT: Final = "stepkit-catalog"
MIGRATIONS: Final = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE folders (
        path TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, kind TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, digest BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE files (
        path TEXT PRIMARY KEY, folder TEXT NOT NULL, workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
        inode INTEGER NOT NULL, summary TEXT
    ) WITHOUT ROWID;
    CREATE INDEX files_by_folder ON files (folder);
    CREATE TABLE placements (
        step TEXT NOT NULL, component TEXT NOT NULL, position INTEGER NOT NULL,
        path TEXT NOT NULL, workspace_id TEXT NOT NULL, job_type TEXT, via TEXT NOT NULL,
        PRIMARY KEY (step, component, position)
    ) WITHOUT ROWID;
    CREATE INDEX placements_by_path ON placements (path);
    CREATE TABLE links (
        key TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (key, path)
    ) WITHOUT ROWID;
    CREATE TABLE definitions (
        name TEXT PRIMARY KEY, config_class TEXT NOT NULL, builder_step_name TEXT NOT NULL,
        spec_type TEXT NOT NULL, sagemaker_step_type TEXT NOT NULL, description TEXT NOT NULL,
        job_types TEXT NOT NULL, workspace_id TEXT NOT NULL, origin_path TEXT,
        origin_line INTEGER, overridden_fields TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE listing (
        name TEXT PRIMARY KEY, folded TEXT NOT NULL, snake TEXT NOT NULL, step_type TEXT,
        job_types TEXT NOT NULL, workspaces TEXT NOT NULL, workspace_id TEXT NOT NULL,
        words TEXT NOT NULL, word_count INTEGER NOT NULL, description_words TEXT NOT NULL,
        row TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX listing_by_folded ON listing (folded);
    CREATE INDEX listing_by_snake ON listing (snake);
    CREATE INDEX listing_by_words ON listing (words);
    CREATE TABLE registry_sources (
        path TEXT NOT NULL, workspace_id TEXT NOT NULL, signature TEXT NOT NULL,
        entries TEXT NOT NULL, PRIMARY KEY (path, workspace_id)
    ) WITHOUT ROWID;
    CREATE TABLE file_problems (
        path TEXT NOT NULL, workspace_id TEXT NOT NULL, line INTEGER NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX file_problems_by_path ON file_problems (path);
    CREATE TABLE unmatched (
        path TEXT NOT NULL, workspace_id TEXT NOT NULL, component TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX unmatched_by_path ON unmatched (path);
    CREATE TABLE walk_problems (
        path TEXT NOT NULL, workspace_id TEXT NOT NULL, message TEXT NOT NULL
    );
    INSERT INTO meta VALUES ('format', 'stepkit-catalog');
    """,
)
_COMPONENT_ORDER: Final = {c: i for i, c in enumerate(COMPONENTS)}


def index_path(project: Project) -> Path:
    return project.state_dir / INDEX_FILE


def open_index(path: Path | str) -> sqlite3.Connection:
    """The index at ``path``, migrated; a file that is not a catalog index (damaged, of
    another program, of a newer stepkit) raises :class:`CorruptIndexError`."""
    try:
        # one thread at a time, not only the opening one: ``catalog watch`` applies changes
        # from its watcher thread to the catalog the caller keeps reading
        conn = connect(path, check_same_thread=False)
    except (sqlite3.DatabaseError, StateStoreError) as exc:
        raise CorruptIndexError(path, str(exc)) from exc
    try:
        fresh = conn.execute("PRAGMA user_version").fetchone()[0] == 0
        if fresh and conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            raise CorruptIndexError(path, "not a catalog index")  # another program's file
        migrate(conn, MIGRATIONS, name=str(path))
        found = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if found is None or found[0] != FORMAT:
            raise CorruptIndexError(path, "not a catalog index")
    except (sqlite3.DatabaseError, StateStoreError) as exc:
        conn.close()
        raise CorruptIndexError(path, str(exc)) from exc
    except CorruptIndexError:
        conn.close()
        raise
    return conn


def remove_index(path: Path) -> None:
    """Delete an index file and its WAL companions (to build it again)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- meta ---------------------------------------------------------------------------------------


def get_meta(conn: sqlite3.Connection, key: str) -> Any:
    found = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return json.loads(found[0]) if found else None


def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))


# -- definitions --------------------------------------------------------------------------------


def write_definitions(conn: sqlite3.Connection, definitions: Mapping[str, StepDefinition]) -> None:
    conn.execute("DELETE FROM definitions")
    conn.executemany(
        "INSERT INTO definitions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                name,
                d.config_class,
                d.builder_step_name,
                d.spec_type,
                d.sagemaker_step_type,
                d.description,
                json.dumps(list(d.job_types)),
                d.workspace_id,
                str(d.origin.path) if d.origin else None,
                d.origin.line if d.origin else None,
                json.dumps(list(d.overridden_fields)),
            )
            for name, d in definitions.items()
        ),
    )


_DEFINITION_SQL: Final = (
    "SELECT name, config_class, builder_step_name, spec_type, sagemaker_step_type, "
    "description, job_types, workspace_id, origin_path, origin_line, overridden_fields "
    "FROM definitions"
)


def read_definitions(
    conn: sqlite3.Connection, name: str | None = None
) -> dict[str, StepDefinition]:
    """Every definition (or the one of ``name``) as the registry gave it."""
    from stepkit.registry.definitions import Origin, StepDefinition

    rows = (
        conn.execute(f"{_DEFINITION_SQL} WHERE name = ?", (name,))
        if name is not None
        else conn.execute(_DEFINITION_SQL)
    )
    paths: dict[str, Path] = {}  # one Path per registry file: a Path costs more than the rest
    out = {}
    for (
        step,
        config_class,
        builder,
        spec_type,
        step_type,
        description,
        job_types,
        workspace_id,
        origin_path,
        origin_line,
        overridden,
    ) in rows:
        origin = None
        if origin_path is not None:
            where = paths.get(origin_path) or paths.setdefault(origin_path, Path(origin_path))
            origin = Origin(workspace_id, where, origin_line)
        out[step] = StepDefinition(
            name=step,
            config_class=config_class,
            builder_step_name=builder,
            spec_type=spec_type,
            sagemaker_step_type=step_type,
            description=description,
            job_types=tuple(json.loads(job_types)),
            workspace_id=workspace_id,
            origin=origin,
            overridden_fields=tuple(json.loads(overridden)),
        )
    return out


# -- placements and listing -----------------------------------------------------------------------


def read_parts(conn: sqlite3.Connection, name: str) -> Parts:
    """A step's components (each in workspace precedence order), in :data:`COMPONENTS` order."""
    parts: dict[str, list[ComponentFile]] = {}
    for component, path, workspace_id, job_type, via in conn.execute(
        "SELECT component, path, workspace_id, job_type, via FROM placements "
        "WHERE step = ? ORDER BY component, position",
        (name,),
    ):
        parts.setdefault(component, []).append(
            ComponentFile(path, component, workspace_id, job_type, via)
        )
    return {c: tuple(parts[c]) for c in sorted(parts, key=_COMPONENT_ORDER.__getitem__)}


def job_types_of(parts: Parts, definition: StepDefinition | None) -> tuple[str, ...]:
    """A step's job types: those its specs declare and those its definition lists."""
    found = {entry.job_type for entry in parts.get("spec", ()) if entry.job_type}
    if definition is not None:
        found.update(definition.job_types)
    return tuple(sorted(found))


def list_row(
    name: str, parts: Parts, definition: StepDefinition | None, rank: Mapping[str, int]
) -> ListRow:
    """One step as ``catalog list`` shows it."""
    present = {c: entries[0].workspace_id for c, entries in parts.items() if entries}
    kind = definition.sagemaker_step_type if definition else None
    missing = tuple(c for c in required_components(kind) if c not in present)
    spaces = [*present.values(), *([definition.workspace_id] if definition else [])]
    workspace_id = min(spaces, key=lambda ws: rank.get(ws, len(rank)), default="")
    job_types = job_types_of(parts, definition)
    data = {
        "name": name,
        "workspace_id": workspace_id,
        "registered": definition is not None,
        "step_type": kind,
        "job_types": list(job_types),
        "components": present,
        "complete": definition is not None and not missing,
        "missing": list(missing),
    }
    return ListRow(
        name=name,
        step_type=kind,
        workspace_id=workspace_id,
        text=json.dumps(data, sort_keys=True, ensure_ascii=False),
    )


def write_steps(
    conn: sqlite3.Connection,
    steps: Mapping[str, Parts],
    names: Iterable[str],
    definitions: Mapping[str, StepDefinition],
    rank: Mapping[str, int],
) -> None:
    """Replace the placements, list rows and search words of ``names`` (steps found in
    ``steps`` or ``definitions``; the others are dropped)."""
    names = sorted(set(names))
    for table, column in (("placements", "step"), ("listing", "name")):
        conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", ((n,) for n in names))
    placements, listing = [], []

    for name in names:
        parts, definition = steps.get(name, {}), definitions.get(name)
        if not parts and definition is None:
            continue
        for component, entries in parts.items():
            placements += [
                (name, component, i, e.location, e.workspace_id, e.job_type, e.via)
                for i, e in enumerate(entries)
            ]
        row = list_row(name, parts, definition, rank)
        spaces = sorted(
            {e.workspace_id for es in parts.values() for e in es}
            | ({definition.workspace_id} if definition else set())
        )
        tokens = words(name)
        listing.append(
            (
                name,
                name.casefold(),
                pascal_to_snake(name),
                row.step_type,
                json.dumps(list(job_types_of(parts, definition))),
                json.dumps(spaces),
                row.workspace_id,
                "_".join(tokens),
                len(set(tokens)),
                "_".join(sorted(set(words(definition.description)))) if definition else "",
                row.text,
            )
        )
    conn.executemany("INSERT INTO placements VALUES (?, ?, ?, ?, ?, ?, ?)", placements)
    conn.executemany("INSERT INTO listing VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", listing)


def write_resolution(
    conn: sqlite3.Connection,
    result: Resolution,
    *,
    paths: Iterable[str] | None,
    names: Iterable[str] | None,
    definitions: Mapping[str, StepDefinition],
    rank: Mapping[str, int],
) -> None:
    """Store a resolution: all of it (``paths`` and ``names`` None), or in place of what
    the files ``paths`` and the steps ``names`` had (an incremental one)."""
    if paths is None or names is None:
        for table in ("placements", "listing", "links", "file_problems", "unmatched"):
            conn.execute(f"DELETE FROM {table}")
        names = {*result.steps, *definitions}
        conn.executemany("INSERT OR IGNORE INTO links VALUES (?, ?)", sorted(result.links))
    else:
        for table in ("file_problems", "unmatched"):
            conn.executemany(f"DELETE FROM {table} WHERE path = ?", ((p,) for p in paths))
    conn.executemany("INSERT INTO file_problems VALUES (?, ?, ?, ?)", result.problems)
    conn.executemany("INSERT INTO unmatched VALUES (?, ?, ?, ?)", result.unmatched)
    write_steps(conn, result.steps, names, definitions, rank)


def file_problems(conn: sqlite3.Connection) -> Iterator[FileProblem]:
    for path, workspace_id, line, message in conn.execute(
        "SELECT path, workspace_id, line, message FROM file_problems ORDER BY path, line"
    ):
        yield FileProblem(path, workspace_id, line, message)


def unmatched(conn: sqlite3.Connection) -> Iterator[Unmatched]:
    for path, workspace_id, component, message in conn.execute(
        "SELECT path, workspace_id, component, message FROM unmatched ORDER BY path, component"
    ):
        yield Unmatched(path, workspace_id, component, message)
