"""The catalog index: one SQLite file, ``<state_dir>/catalog/index.sqlite``.

Folders (own stat, digest of their files' stat rows), files (kind, stat row, JSON summary),
placements (resolved steps), links (keys per file), listing (``catalog list`` rows and the
words ``search`` matches), definitions and parsed registry files; opened through
:mod:`stepkit.sqlite` (WAL, busy timeout, ``user_version`` migrations).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from stepkit.catalog.records import COMPONENTS, ComponentFile, Parts, StepInfo
from stepkit.catalog.resolution import Resolution
from stepkit.catalog.search import words
from stepkit.errors import CorruptIndexError, StateStoreError
from stepkit.names import name_key, pascal_to_snake
from stepkit.registry.definitions import Origin, StepDefinition
from stepkit.registry.sources import INDEX_FILE
from stepkit.sqlite import connect, migrate

if TYPE_CHECKING:
    from stepkit.project import Project

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
    # interface files are indexed, list rows say the layout, and definitions are looked up
    # by what files declare (an incremental resolution asks a few): everything is read again
    """
    DELETE FROM folders;
    DELETE FROM files;
    DELETE FROM definitions;
    DELETE FROM meta WHERE key = 'registry_key';
    ALTER TABLE definitions ADD COLUMN stem TEXT NOT NULL DEFAULT '';
    ALTER TABLE definitions ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX definitions_by_config ON definitions (config_class);
    CREATE INDEX definitions_by_builder ON definitions (builder_step_name);
    CREATE INDEX definitions_by_spec_type ON definitions (spec_type);
    CREATE INDEX definitions_by_stem ON definitions (stem);
    CREATE INDEX definitions_by_key ON definitions (name_key);
    """,
    # a placement says when its file could not be read (its step is then incomplete)
    """
    DELETE FROM folders;
    DELETE FROM files;
    DELETE FROM definitions;
    DELETE FROM meta WHERE key = 'registry_key';
    ALTER TABLE placements ADD COLUMN broken TEXT;
    """,
    # problems name a value that is not literal in user words (stepkit.literals): read again
    """
    DELETE FROM folders;
    DELETE FROM files;
    DELETE FROM definitions;
    DELETE FROM meta WHERE key = 'registry_key';
    """,
    # a script's summary says what its main reads (stepkit.reads): scripts read again
    """
    UPDATE files SET summary = NULL WHERE kind = 'script';
    """,
    # an interface's ``source_dir: true`` is the scripts folder: everything read again
    """
    DELETE FROM folders;
    DELETE FROM files;
    DELETE FROM definitions;
    DELETE FROM meta WHERE key = 'registry_key';
    """,
    # a search reads every row's words at once: from an index holding them (a narrow scan)
    """
    CREATE INDEX listing_for_search ON listing (name, workspace_id, words, description_words);
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
        # the index is rebuilt, not restored: say SQLite's own reason, not the stores' advice
        cause = exc.__cause__ if isinstance(exc.__cause__, sqlite3.DatabaseError) else exc
        raise CorruptIndexError(path, str(cause)) from exc
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


def count_change(conn: sqlite3.Connection) -> None:
    """Count a change of the files rows in ``meta.changes``: a plan made before another
    process's change is made again (see ``IndexSession._sync``)."""
    set_meta(conn, "changes", (get_meta(conn, "changes") or 0) + 1)


# -- definitions --------------------------------------------------------------------------------


#: The columns of ``definitions``: a StepDefinition's fields, its origin spread out.
_DEFINITION: Final = (  # noqa: SIM905  (a word list reads better than 11 quoted lines)
    "name config_class builder_step_name spec_type sagemaker_step_type description "
    "job_types workspace_id origin_path origin_line overridden_fields"
).split()


def write_definitions(
    conn: sqlite3.Connection,
    definitions: Mapping[str, StepDefinition],
    *,
    names: Iterable[str] | None = None,
) -> None:
    """Store the definitions in place of all (or of those of ``names`` only)."""
    if names is None:
        conn.execute("DELETE FROM definitions")
    else:
        conn.executemany("DELETE FROM definitions WHERE name = ?", ((n,) for n in names))
    rows = [
        (
            *(getattr(d, c) for c in _DEFINITION[:6]),
            json.dumps(d.job_types),
            d.workspace_id,
            str(d.origin.path) if d.origin else None,
            d.origin.line if d.origin else None,
            json.dumps(d.overridden_fields),
            pascal_to_snake(d.name),
            name_key(d.name),
        )
        for d in definitions.values()
    ]
    columns = ", ".join((*_DEFINITION, "stem", "name_key"))
    conn.executemany(f"INSERT INTO definitions ({columns}) VALUES ({', '.join('?' * 13)})", rows)


class StoredDefinitions(Mapping[str, StepDefinition]):
    """The index's definitions, read a name at a time (what an incremental resolution
    asks about), without origins."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._read: dict[str, StepDefinition | None] = {}

    def __getitem__(self, name: str) -> StepDefinition:
        if name not in self._read:
            self._read[name] = read_definitions(self._conn, name, origins=False).get(name)
        found = self._read[name]
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return (n for (n,) in self._conn.execute("SELECT name FROM definitions ORDER BY name"))

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM definitions").fetchone()[0])


class StoredLookups:
    """:class:`~stepkit.catalog.resolution.Lookups` answered by the index's definitions
    (indexed by class, spec type, stem and spelling-blind key), each answer kept."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._answers: dict[tuple[str, str], Any] = {}

    def _names(self, column: str, value: str) -> list[str]:
        key = (column, value)
        if key not in self._answers:
            sql = f"SELECT name FROM definitions WHERE {column} = ? ORDER BY name"
            self._answers[key] = [n for (n,) in self._conn.execute(sql, (value,))]
        return self._answers[key]  # type: ignore[no-any-return]

    def config_owners(self, config_class: str) -> Sequence[str]:
        return self._names("config_class", config_class)

    def builder_owners(self, builder_class: str) -> Sequence[str]:
        return self._names("builder_step_name", builder_class)

    def spec_type_owner(self, spec_type: str) -> str | None:
        return next(iter(self._names("spec_type", spec_type)), None)

    def stem_owner(self, stem: str) -> str | None:
        """As :class:`~stepkit.names.StemIndex` answers: the stem, else the one name of
        its key."""
        found = self._names("stem", stem)
        if found:
            return found[-1]  # StemIndex keeps the last name of a stem, in name order
        by_key = self._names("name_key", name_key(stem))
        return by_key[0] if len(by_key) == 1 else None


def stored_job_types(conn: sqlite3.Connection) -> list[str]:
    """Every job type some definition declares."""
    sql = "SELECT DISTINCT j.value FROM definitions, json_each(definitions.job_types) AS j"
    return sorted(v for (v,) in conn.execute(sql))


def read_definitions(
    conn: sqlite3.Connection,
    name: str | None = None,
    *,
    names: Iterable[str] | None = None,
    origins: bool = True,
) -> dict[str, StepDefinition]:
    """Every definition (or the one of ``name``, or those of ``names``) as the registry
    gave it; without ``origins`` none says where it was written (what resolution needs:
    a derived registry has one origin file per step, and a Path costs more than the rest)."""
    where, args = ("WHERE name = ?", [name]) if name is not None else ("", [])
    if names is not None:
        where, args = "WHERE name IN (SELECT value FROM json_each(?))", [json.dumps(list(names))]
    paths: dict[str, Path] = {}  # one Path per registry file
    out = {}
    for row in conn.execute(f"SELECT {', '.join(_DEFINITION)} FROM definitions {where}", args):
        d = dict(zip(_DEFINITION, row, strict=True))
        at, line = d.pop("origin_path"), d.pop("origin_line")
        at = at if origins else None
        origin = Origin(d["workspace_id"], paths.setdefault(at, Path(at)), line) if at else None
        d["job_types"] = tuple(json.loads(d["job_types"]))
        d["overridden_fields"] = tuple(json.loads(d["overridden_fields"]))
        out[d["name"]] = StepDefinition(**d, origin=origin)
    return out


# -- placements and listing -----------------------------------------------------------------------


class StoredFile(NamedTuple):
    """A file as the index has it: its stat row, the folder to rescan when that no longer
    holds, and its summary (a named tuple: a plan makes one per file of a changed folder)."""

    path: str
    folder: str
    workspace_id: str
    kind: str
    stat: tuple[int, int, int]  # mtime_ns, size, inode (mtime -1: racy, read it again)
    summary: str | None = None


def read_parts(conn: sqlite3.Connection, name: str) -> tuple[Parts, list[StoredFile]]:
    """A step's components (each in workspace precedence order), in :data:`COMPONENTS`
    order, and the stat rows of their files (what a lookup checks)."""
    parts: dict[str, list[ComponentFile]] = {}
    stats = []
    for component, path, workspace_id, job_type, via, broken, folder, kind, *stat in conn.execute(
        "SELECT p.component, p.path, p.workspace_id, p.job_type, p.via, p.broken, f.folder, "
        "f.kind, f.mtime_ns, f.size, f.inode FROM placements p JOIN files f ON f.path = p.path "
        "WHERE p.step = ? ORDER BY p.component, p.position",
        (name,),
    ):
        entry = ComponentFile(path, component, workspace_id, job_type, via, broken)
        parts.setdefault(component, []).append(entry)
        stats.append(StoredFile(path, folder, workspace_id, kind, tuple(stat)))
    return _in_order(parts), stats


def _in_order(parts: Mapping[str, list[ComponentFile]]) -> Parts:
    return {c: tuple(parts[c]) for c in sorted(parts, key=_COMPONENT_ORDER.__getitem__)}


def read_all_parts(conn: sqlite3.Connection) -> dict[str, Parts]:
    """Every step's components, as :func:`read_parts` gives one step's (one query)."""
    found: dict[str, dict[str, list[ComponentFile]]] = {}
    for step, component, path, workspace_id, job_type, via, broken in conn.execute(
        "SELECT step, component, path, workspace_id, job_type, via, broken FROM placements "
        "ORDER BY step, component, position"
    ):
        entry = ComponentFile(path, component, workspace_id, job_type, via, broken)
        found.setdefault(step, {}).setdefault(component, []).append(entry)
    return {step: _in_order(parts) for step, parts in found.items()}


def _list_row(info: StepInfo) -> tuple[Any, ...]:
    """One step's row of ``listing``: the JSON ``catalog list`` prints, the columns its
    filters match (``,a,b,`` lists) and the words ``search`` matches."""
    d = info.definition
    spaces = {e.workspace_id for e in (*info.components.values(), *info.specs.values())}
    spaces.update(e.workspace_id for e in info.shadowed)
    spaces |= {d.workspace_id} if d else set()
    data = {"name": info.name, "workspace_id": info.workspace_id, "registered": d is not None}
    data |= {"step_type": info.step_type, "job_types": list(info.job_types)}
    data |= {"components": {c: f.workspace_id for c, f in info.components.items()}}
    missing, broken = list(info.missing), info.broken  # (each worked out once)
    data |= {"complete": d is not None and not missing and not broken}
    data |= {"missing": missing, "broken": broken, "layout": info.layout}
    data |= {"abstract": True} if info.abstract else {}
    tokens = words(info.name)
    return (
        info.name,
        info.name.casefold(),
        pascal_to_snake(info.name),
        info.step_type,
        f",{','.join(info.job_types)},",
        f",{','.join(sorted(spaces))},",
        info.workspace_id,
        "_".join(tokens),
        len(set(tokens)),
        "_".join(sorted(set(words(d.description)))) if d else "",
        json.dumps(data, sort_keys=True, ensure_ascii=False),
    )


def write_resolution(
    conn: sqlite3.Connection,
    result: Resolution,
    *,
    paths: Iterable[str] | None,
    names: Iterable[str] | None,
    definitions: Mapping[str, StepDefinition],
    rank: Mapping[str, int],
) -> None:
    """Store a resolution: all of it (``paths`` and ``names`` None: its tables were just
    emptied), or in place of what the files ``paths`` and the steps ``names`` had (an
    incremental one). A name with neither files nor a definition is dropped."""
    if paths is None or names is None:
        names = {*result.steps, *definitions}
    else:
        conn.executemany("DELETE FROM unmatched WHERE path = ?", ((p,) for p in paths))
        for table, column in (("placements", "step"), ("listing", "name")):
            conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", ((n,) for n in names))
    conn.executemany("INSERT INTO unmatched VALUES (?, ?, ?, ?)", result.unmatched)
    placements, listing = [], []
    for name in sorted(set(names)):
        parts, definition = result.steps.get(name, {}), definitions.get(name)
        if not parts and definition is None:
            continue
        for component, entries in parts.items():
            placements += [
                (name, component, i, e.location, e.workspace_id, e.job_type, e.via, e.broken)
                for i, e in enumerate(entries)
            ]
        listing.append(_list_row(StepInfo.of(name, parts, definition, rank)))
    conn.executemany("INSERT INTO placements VALUES (?, ?, ?, ?, ?, ?, ?, ?)", placements)
    conn.executemany("INSERT INTO listing VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", listing)
