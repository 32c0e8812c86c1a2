"""What a batch finalizes: :class:`FinalizeItem`, and the items ``add`` makes of files and folders.

``stepkit artifacts add`` and :meth:`ArtifactStore.add` share :func:`add_items`, so the
command and the API finalize the same items through the same batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from stepkit.artifacts.layout import default_layout, safe_part
from stepkit.errors import ArtifactStoreError

#: How a finalized file reaches the store: moved in (the default) or copied, the source kept.
Mode = Literal["move", "copy"]
#: Called with the number of files (or bytes) done since the last call.
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FinalizeItem:
    """One file (or stream) of a batch and what to record about it."""

    file: Path | IO[bytes]
    artifact_id: str
    source: str
    producer: str
    run_id: str | None = None
    content_type: str | None = None
    layout: str | None = None  # readable path under the root; None: the default policy


#: ``add`` finalizes a folder in batches of at most this many files: each batch is one
#: file-system sync and one catalog transaction, and memory stays bounded.
ADD_BATCH = 16_384


def files_under(folder: Path) -> list[tuple[Path, str]]:
    """(path, relative POSIX path) of every regular file under ``folder``, sorted.

    Symbolic links are skipped: a link is not content, and moving one would store the
    link rather than its target. ``scandir`` gives the file type without a ``stat``.
    """
    found: list[tuple[Path, str]] = []
    pending = [(str(folder), "")]
    while pending:
        here, prefix = pending.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
                elif entry.is_file(follow_symlinks=False):
                    found.append((Path(entry.path), f"{prefix}{entry.name}"))
    found.sort(key=lambda pair: pair[1])
    return found


def add_items(
    paths: Sequence[Path],
    *,
    artifact_id: str,
    source: str,
    producer: str,
    run_id: str | None = None,
    content_type: str | None = None,
) -> list[FinalizeItem]:
    """What ``add`` finalizes for ``paths``: a file as ``artifact_id`` (``id/name`` when
    several are given), each file of a folder as ``id/relpath``, its readable path the
    folder's default one with the folder's own structure below it."""
    items: list[FinalizeItem] = []
    for given in paths:
        if given.is_dir():
            base = default_layout(
                artifact_id=artifact_id,
                source=source,
                producer=producer,
                run_id=run_id,
                name=given.resolve().name,
            )
            for file, rel in files_under(given):
                readable = "/".join(safe_part(part) for part in rel.split("/"))
                items.append(
                    FinalizeItem(
                        file, f"{artifact_id}/{rel}", source, producer, run_id, content_type,
                        layout=f"{base}/{readable}",
                    )
                )  # fmt: skip
        elif given.is_file():
            aid = artifact_id if len(paths) == 1 else f"{artifact_id}/{given.name}"
            items.append(FinalizeItem(given, aid, source, producer, run_id, content_type))
        else:
            raise ArtifactStoreError(f"{given}: no such file or folder to add.")
    return items
