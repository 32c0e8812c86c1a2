"""The indexed files, kept folder by folder: names, stat data and summary hashes in flat
arrays rather than a list per file.

50,000 files as a dict of small lists cost ~20 MB and a Python-level comparison per file
on every start. Kept per folder, they cost a quarter of that, load as a few byte strings,
and a folder whose walk equals what the index holds (names and stat data compared in C)
is reused whole. Rows are made on demand: ``[workspace, component, mtime_ns, size,
inode, summary hash or None]``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any, Final

from stepkit.project import FolderScan

#: ``hashes`` value of a file not parsed since it changed.
UNPARSED: Final = -1
_INODE_WRAP: Final = 2**64


def _signed(inode: int) -> int:
    return inode - _INODE_WRAP if inode >= 2**63 else inode


class FolderRows:
    """The files of one folder: sorted names, (mtime_ns, size, inode) per name in
    ``stats`` and the summary hash per name in ``hashes``."""

    __slots__ = (
        "_at",
        "_folder",
        "_paths",
        "component",
        "hashes",
        "names",
        "stats",
        "workspace_id",
    )

    def __init__(
        self,
        workspace_id: str,
        component: str,
        names: list[str],
        stats: array[int],
        hashes: array[int],
        folder: str = "",
    ) -> None:
        self.workspace_id = workspace_id
        self.component = component
        self.names = names
        self.stats = stats
        self.hashes = hashes
        self._at: dict[str, int] | None = None
        self._folder = folder
        self._paths: list[str | None] | None = None  # full paths made so far, kept

    @classmethod
    def unparsed(cls, scan: FolderScan) -> FolderRows:
        hashes = array("q", [UNPARSED]) * len(scan.names)
        return cls(scan.workspace_id, scan.component, scan.names, scan.stats, hashes, scan.folder)

    def path_of(self, i: int) -> str:
        """The full path of file ``i``, made once and kept: a cold start's summaries,
        resolution and links then share one string per file instead of three."""
        if self._paths is None:
            self._paths = [None] * len(self.names)
        path = self._paths[i]
        if path is None:
            path = self._paths[i] = f"{self._folder}/{self.names[i]}"
        return path

    def _path(self, folder: str, i: int) -> str:
        paths = self._paths
        found = paths[i] if paths is not None else None
        return found if found is not None else f"{folder}/{self.names[i]}"

    def matches(self, scan: FolderScan) -> bool:
        """The walk found exactly these files, unchanged."""
        return (
            self.stats == scan.stats
            and self.names == scan.names
            and self.workspace_id == scan.workspace_id
            and self.component == scan.component
        )

    def position(self, name: str) -> int | None:
        if self._at is None:
            self._at = {n: i for i, n in enumerate(self.names)}
        return self._at.get(name)

    def row(self, i: int) -> list[Any]:
        stats, digest = self.stats, self.hashes[i]
        inode = stats[3 * i + 2]
        return [
            self.workspace_id,
            self.component,
            stats[3 * i],
            stats[3 * i + 1],
            inode if inode >= 0 else inode + _INODE_WRAP,
            None if digest == UNPARSED else digest,
        ]

    def same_stat(self, i: int, other: FolderRows | FolderScan, j: int) -> bool:
        return self.stats[3 * i : 3 * i + 3] == other.stats[3 * j : 3 * j + 3]

    def copy(self) -> FolderRows:
        return FolderRows(
            self.workspace_id,
            self.component,
            list(self.names),
            array("q", self.stats),
            array("q", self.hashes),
            self._folder,
        )

    def plain(self) -> list[Any]:
        return [
            self.workspace_id,
            self.component,
            self.names,
            self.stats.tobytes(),
            self.hashes.tobytes(),
        ]

    @classmethod
    def from_plain(cls, folder: str, plain: list[Any]) -> FolderRows:
        workspace_id, component, names, stats, hashes = plain
        rows = cls(workspace_id, component, names, array("q"), array("q"), folder)
        rows.stats.frombytes(stats)
        rows.hashes.frombytes(hashes)
        if len(rows.stats) != 3 * len(names) or len(rows.hashes) != len(names):
            raise ValueError("file rows of unequal lengths")
        return rows


class FileTable:
    """path → row (see the module), kept per folder; a copy shares folders until one of
    them changes."""

    __slots__ = ("_owned", "folders")

    def __init__(self, folders: dict[str, FolderRows] | None = None) -> None:
        self.folders: dict[str, FolderRows] = folders if folders is not None else {}
        self._owned: set[str] = set(self.folders)

    # -- reading ----------------------------------------------------------------------------

    def _find(self, path: str) -> tuple[FolderRows, int] | None:
        folder, _, name = path.rpartition("/")
        rows = self.folders.get(folder)
        if rows is None:
            return None
        i = rows.position(name)
        return None if i is None else (rows, i)

    def get(self, path: str) -> list[Any] | None:
        found = self._find(path)
        return found[0].row(found[1]) if found else None

    def hash_of(self, path: str) -> int | None:
        found = self._find(path)
        if found is None:
            return None
        digest = found[0].hashes[found[1]]
        return None if digest == UNPARSED else digest

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self._find(path) is not None

    def __len__(self) -> int:
        return sum(len(rows.names) for rows in self.folders.values())

    def __bool__(self) -> bool:
        return any(rows.names for rows in self.folders.values())

    def __iter__(self) -> Iterator[str]:
        for folder, rows in self.folders.items():
            for i in range(len(rows.names)):
                yield rows._path(folder, i)

    def items(self) -> Iterator[tuple[str, list[Any]]]:
        for folder, rows in self.folders.items():
            for i in range(len(rows.names)):
                yield rows._path(folder, i), rows.row(i)

    # -- changing ---------------------------------------------------------------------------

    def _own(self, folder: str) -> FolderRows | None:
        rows = self.folders.get(folder)
        if rows is not None and folder not in self._owned:
            rows = self.folders[folder] = rows.copy()
            self._owned.add(folder)
        return rows

    def set_hash(self, path: str, digest: int) -> None:
        found = self._find(path)
        if found is None:
            raise KeyError(path)
        self._own(path.rpartition("/")[0])
        found = self._find(path)
        assert found is not None
        found[0].hashes[found[1]] = digest

    def put(
        self,
        path: str,
        workspace_id: str,
        component: str,
        stat: tuple[int, int, int],
        digest: int | None,
    ) -> None:
        """Add or replace one file (watch mode)."""
        folder, _, name = path.rpartition("/")
        rows = self._own(folder)
        if rows is None:
            rows = FolderRows(workspace_id, component, [], array("q"), array("q"), folder)
            self.folders[folder] = rows
            self._owned.add(folder)
        else:  # one workspace and component per folder: where the folder is says which
            rows.workspace_id, rows.component = workspace_id, component
        mtime, size, inode = stat
        values = (mtime, size, _signed(inode))
        i = rows.position(name)
        if i is None:
            i = bisect_left(rows.names, name)
            rows.names.insert(i, name)
            rows.stats[3 * i : 3 * i] = array("q", values)
            rows.hashes.insert(i, UNPARSED)
            rows._at = rows._paths = None
        else:
            rows.stats[3 * i : 3 * i + 3] = array("q", values)
        rows.hashes[i] = UNPARSED if digest is None else digest

    def remove(self, path: str) -> bool:
        folder, _, name = path.rpartition("/")
        if self._find(path) is None:
            return False
        rows = self._own(folder)
        assert rows is not None
        i = rows.position(name)
        assert i is not None
        del rows.names[i]
        del rows.stats[3 * i : 3 * i + 3]
        del rows.hashes[i]
        rows._at = rows._paths = None
        if not rows.names:
            del self.folders[folder]
        return True

    def remove_under(self, folder: str) -> list[str]:
        """Drop every file in ``folder`` and below it (a folder removed or moved away);
        returns their paths."""
        gone: list[str] = []
        for name in [f for f in self.folders if f == folder or f.startswith(folder + "/")]:
            rows = self.folders.pop(name)
            self._owned.discard(name)
            gone += [rows._path(name, i) for i in range(len(rows.names))]
        return gone

    def copy(self) -> FileTable:
        """A table sharing every folder with this one until it changes one."""
        table = FileTable(dict(self.folders))
        table._owned = set()
        self._owned = set()  # neither changes a shared folder in place from now on
        return table

    # -- storing ----------------------------------------------------------------------------

    def plain(self) -> dict[str, list[Any]]:
        return {folder: rows.plain() for folder, rows in self.folders.items()}

    @classmethod
    def from_plain(cls, plain: dict[str, list[Any]]) -> FileTable:
        return cls({folder: FolderRows.from_plain(folder, rows) for folder, rows in plain.items()})
