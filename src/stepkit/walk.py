"""The one walker of a workspace's file tree: every component file, with its stat data.

Every part of stepkit that needs the files of a workspace gets them from here. A walk
answers folder by folder (a :class:`FolderScan`), because the catalog keeps a digest per
folder and reuses an unchanged one whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import TYPE_CHECKING, Final, NamedTuple

from stepkit.project import COMPONENT_DIRS, INTERFACE_SUFFIX

if TYPE_CHECKING:
    from stepkit.project import Project, Workspace


class WalkedFile(NamedTuple):
    """One component file of a folder, with the stat data the catalog keys on."""

    name: str
    mtime_ns: int
    size: int
    inode: int  # an inode past 2**63 as its signed 64-bit equal (what SQLite keeps)

    @property
    def stat(self) -> tuple[int, int, int]:
        """(mtime_ns, size, inode): what the index compares."""
        return (self.mtime_ns, self.size, self.inode)


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """Something the walker could not read; reported, never fatal."""

    path: Path
    workspace_id: str
    message: str


@dataclass(frozen=True, slots=True)
class FolderScan:
    """One walked folder: its own stat, and its component files' names (sorted) and stat
    data as columns — a warm walk compares a folder's digest, and only a folder that
    changed is read file by file (:attr:`files`).

    The folder's own (mtime_ns, inode) change when an entry is added, removed or renamed:
    a caller keeping them can tell, with one ``stat``, whether the folder still lists the
    same files. ``component`` is empty for a steps folder itself (it holds component
    folders, not files).
    """

    folder: str
    workspace_id: str
    component: str
    names: list[str] = field(default_factory=list)
    mtimes: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    inodes: list[int] = field(default_factory=list)  # past 2**63: the signed 64-bit equal
    mtime_ns: int = 0
    inode: int = 0

    @property
    def files(self) -> list[WalkedFile]:
        return list(map(WalkedFile, self.names, self.mtimes, self.sizes, self.inodes))


@dataclass(slots=True)
class Walk:
    """What a walk found, folder by folder, and what it could not read."""

    folders: list[FolderScan] = field(default_factory=list)
    problems: list[WalkProblem] = field(default_factory=list)

    def paths(self) -> Iterator[tuple[str, FolderScan, WalkedFile]]:
        """Every walked file as (path, its folder, its stat data), in walk order."""
        for scan in self.folders:
            for found in scan.files:
                yield f"{scan.folder}/{found.name}", scan, found

    def __len__(self) -> int:
        return sum(len(scan.names) for scan in self.folders)


def scan_project(project: Project) -> Walk:
    """The files of every workspace, in precedence order."""
    walk = Walk()
    for workspace in project.workspaces:
        scan_workspace(workspace, walk)
    return walk


def scan_workspace(workspace: Workspace, walk: Walk | None = None) -> Walk:
    """Every component file under the workspace's component folders (``*.py``; in
    ``interfaces/``, ``*.step.yaml``), and every folder walked, the steps folder first.

    Follows symlinked folders once (a loop is reported, not followed); a missing or
    unreadable folder is a problem in the result, and the walk goes on.
    """
    out = walk if walk is not None else Walk()
    try:
        info = os.stat(workspace.steps_dir)
    except OSError:
        info = None
    if info is None or not S_ISDIR(info.st_mode):
        out.problems.append(
            WalkProblem(workspace.steps_dir, workspace.id, "steps folder does not exist")
        )
        return out
    top = str(workspace.steps_dir)
    top_scan = FolderScan(top, workspace.id, "", mtime_ns=info.st_mtime_ns, inode=_signed(info))
    out.folders.append(top_scan)
    for folder, component in COMPONENT_DIRS.items():
        if os.path.isdir(f"{top}/{folder}"):
            scan_folder(f"{top}/{folder}", workspace.id, component, out)
    return out


def scan_folder(folder: str, workspace_id: str, component: str, walk: Walk) -> Walk:
    """One component folder and every folder below it (see :func:`scan_workspace`)."""
    _walk_dir(folder, workspace_id, component, walk, visited=set())
    return walk


def _signed(info: os.stat_result) -> int:
    return info.st_ino if info.st_ino < 2**63 else info.st_ino - 2**64


def _walk_dir(
    folder: str, workspace_id: str, component: str, out: Walk, visited: set[tuple[int, int]]
) -> None:
    try:
        info = os.stat(folder)
    except OSError as exc:
        out.problems.append(
            WalkProblem(Path(folder), workspace_id, f"cannot be read: {exc.strerror}")
        )
        return
    key = (info.st_dev, info.st_ino)
    if key in visited:
        out.problems.append(
            WalkProblem(Path(folder), workspace_id, "symlink loop: folder already visited")
        )
        return
    visited.add(key)
    try:
        fd = os.open(folder, _DIR_FLAGS)
    except OSError as exc:
        out.problems.append(
            WalkProblem(Path(folder), workspace_id, f"cannot be listed: {exc.strerror}")
        )
        return
    try:
        subfolders = _scan_dir(fd, folder, workspace_id, component, out, info)
    finally:
        os.close(fd)
    for sub in subfolders:
        _walk_dir(sub, workspace_id, component, out, visited)


def _scan_dir(
    fd: int, folder: str, workspace_id: str, component: str, out: Walk, info: os.stat_result
) -> list[str]:
    """One folder, opened as ``fd``: each entry is ``stat``-ed relative to it (a path
    lookup of one part, not of the whole path). Returns its subfolders."""
    try:
        entries = sorted(os.listdir(fd if _RELATIVE_STAT else folder))
    except OSError as exc:
        out.problems.append(
            WalkProblem(Path(folder), workspace_id, f"cannot be listed: {exc.strerror}")
        )
        return []
    suffix = INTERFACE_SUFFIX if component == "interface" else ".py"
    subfolders: list[str] = []
    scan = FolderScan(
        folder, workspace_id, component, mtime_ns=info.st_mtime_ns, inode=_signed(info)
    )
    for name in entries:
        if name.startswith((".", "__pycache__")):
            continue
        try:
            st = os.stat(name, dir_fd=fd) if _RELATIVE_STAT else os.stat(f"{folder}/{name}")
        except OSError as exc:  # a dangling symlink (to a folder, maybe), a file removed
            out.problems.append(  # while walking: said, never skipped silently
                WalkProblem(Path(folder, name), workspace_id, f"cannot be read: {exc.strerror}")
            )
            continue
        if S_ISDIR(st.st_mode):
            subfolders.append(f"{folder}/{name}")
        elif name.endswith(suffix) and name != "__init__.py" and S_ISREG(st.st_mode):
            scan.names.append(name)
            scan.mtimes.append(st.st_mtime_ns)
            scan.sizes.append(st.st_size)
            scan.inodes.append(_signed(st))
    out.folders.append(scan)
    return subfolders


#: ``stat`` relative to an open folder where the platform can (Linux, macOS).
_RELATIVE_STAT: Final = os.stat in os.supports_dir_fd and os.listdir in os.supports_fd
_DIR_FLAGS: Final = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
