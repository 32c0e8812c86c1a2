"""Open a catalog without validating ``stepkit.toml`` again when nothing about it changed.

Validating the project file costs more than everything else a warm ``catalog list``
does (pydantic). The index keeps a snapshot of the loaded :class:`Project` with the
file's (mtime, size, inode) and the ``STEPKIT_*`` variables that override settings; when
they all match, the snapshot is the project. Anything else goes through
:meth:`Project.load`, the one authority on what the file means.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.catalog.store import IndexData, gc_paused, load_index

if TYPE_CHECKING:
    from stepkit.project import Project


def _file_key(project_file: Path) -> list[Any]:
    from stepkit.project import ENV_OVERRIDES

    st = project_file.stat()
    env = [[var, os.environ.get(var)] for var in sorted(ENV_OVERRIDES)]
    return [str(project_file), st.st_mtime_ns, st.st_size, st.st_ino, env]


def snapshot(project: Project) -> dict[str, Any]:
    """The project as plain data, with the key that says when it is still valid."""
    try:
        key = _file_key(project.file)
    except OSError:
        return {}
    return {
        "key": key,
        "name": project.name,
        "root": str(project.root),
        "state_dir": str(project.state_dir),
        "workspaces": [
            [ws.id, str(ws.steps_dir), str(ws.registry_file) if ws.registry_file else None]
            for ws in project.workspaces
        ],
        "state_url": project.state.url,
        "artifacts": [
            str(project.artifacts.root) if project.artifacts.root else None,
            project.artifacts.catalog_url,
        ],
        "run": [project.run.executor, project.run.max_workers],
        "test": [project.test.timeout, dict(project.test.env)],
    }


def _restore(plain: dict[str, Any], project_file: Path) -> Project | None:
    from stepkit.project import (
        ArtifactSettings,
        Project,
        RunSettings,
        StateSettings,
        TestSettings,
        Workspace,
    )

    count = len(plain["workspaces"])
    workspaces = []
    for i, (ws_id, steps_dir, registry) in enumerate(plain["workspaces"]):
        registry_file = Path(registry) if registry else None
        # the full loader rejects a missing folder or registry: let it say so
        if not os.path.isdir(steps_dir) or (registry_file and not registry_file.is_file()):
            return None
        workspaces.append(Workspace(ws_id, Path(steps_dir), registry_file, i == count - 1))
    artifacts_root, catalog_url = plain["artifacts"]
    return Project(
        name=plain["name"],
        root=Path(plain["root"]),
        file=project_file,
        state_dir=Path(plain["state_dir"]),
        workspaces=tuple(workspaces),
        state=StateSettings(url=plain["state_url"]),
        artifacts=ArtifactSettings(
            root=(Path(artifacts_root) if "://" not in artifacts_root else artifacts_root)
            if artifacts_root
            else None,
            catalog_url=catalog_url,
        ),
        run=RunSettings(executor=plain["run"][0], max_workers=plain["run"][1]),
        test=TestSettings(timeout=plain["test"][0], env=plain["test"][1]),
    )


def quick_open(path: str | None) -> tuple[Project, IndexData] | None:
    """(project, its loaded index) when the index's snapshot still holds, else None."""
    from stepkit.project import find_project_file

    project_file = find_project_file(path)
    try:
        data = tomllib.loads(project_file.read_text(encoding="utf-8"))
        state = os.environ.get("STEPKIT_STATE_DIR") or data.get("project", {}).get(
            "state_dir", ".stepkit"
        )
        state_dir = (project_file.parent / state).resolve()
        key = _file_key(project_file)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return None  # the full loader reports what is wrong, with its line
    with gc_paused():
        index, _warning = load_index(state_dir / "catalog" / "index.bin")
    if index is None or index.project.get("key") != key:
        return None
    project = _restore(index.project, project_file)
    return (project, index) if project is not None else None
