"""Finalize into a remote object store (S3 and compatible): hash locally, upload each digest once.

A file is hashed where it lies (1 MiB chunks, read once); a stream is copied into a temp
file of the local spool while it is hashed. Each distinct digest is then checked on the
server (``HEAD``) and uploaded only when missing — a dedup hit sends no bytes. A file that
changes between its hash and the end of its upload is refused, and the object just made
from it removed. Records are committed in one catalog transaction after every upload.

No readable layout is made on a remote store: object stores have no hardlinks, and a
server-side copy per readable path would store every byte twice. ``where``/``show`` give
each record's ``s3://…`` URL instead; see ``docs/team-setup.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.artifacts import metrics
from stepkit.artifacts.digest import hash_stream
from stepkit.artifacts.lock import store_lock
from stepkit.artifacts.records import Finalized, Registration
from stepkit.errors import ArtifactStoreError
from stepkit.observability import get_logger

if TYPE_CHECKING:
    from stepkit.artifacts.fsspec_blobs import FsspecBlobs
    from stepkit.artifacts.items import FinalizeItem, Mode, Progress
    from stepkit.artifacts.parts import StoreParts

_log = get_logger("stepkit.artifacts.remote")


def finalize_remote(
    store: StoreParts,
    remote: FsspecBlobs,
    items: Sequence[FinalizeItem],
    *,
    mode: Mode,
    keep: bool,
    on_progress: Progress | None,
) -> list[Finalized]:
    """Upload ``items`` to ``remote`` (each digest once) and record them in one transaction.

    ``move`` removes each source file after the commit (``keep``: leaves it); ``copy``
    never touches it. The store lock (local spool) is held shared, as a local finalize does.
    """
    temps: list[Path] = []
    digests: list[tuple[str, int]] = []
    dedup: list[bool] = []
    uploaded: dict[str, bool] = {}  # digest -> was already there
    try:
        with store_lock(store.root, exclusive=False):
            for item in items:
                sha256, size, was_there = _upload_one(store, remote, item, temps, uploaded)
                digests.append((sha256, size))
                dedup.append(was_there)
                if on_progress is not None:
                    on_progress(1)
            outcomes = store.catalog.register_many(
                [
                    Registration(
                        artifact_id=item.artifact_id,
                        source=item.source,
                        producer=item.producer,
                        sha256=sha256,
                        bytes=size,
                        storage_uri=remote.uri(sha256),
                        content_type=item.content_type,
                        layout_path=None,
                        run_id=item.run_id,
                    )
                    for item, (sha256, size) in zip(items, digests, strict=True)
                ]
            )
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    if mode == "move" and not keep:
        for item in items:
            if isinstance(item.file, Path):
                item.file.unlink(missing_ok=True)
    metrics.dedup_hits(sum(dedup))
    metrics.bytes_stored(
        sum(size for (_, size), hit in zip(digests, dedup, strict=True) if not hit)
    )
    return [
        Finalized(
            record=outcome.record,
            status=outcome.status,
            dedup_hit=hit,
            copied=True,  # the bytes now live on the server: always a copy of the file
            storage=remote.uri(sha256),
            layout=None,
        )
        for outcome, (sha256, _), hit in zip(outcomes, digests, dedup, strict=True)
    ]


def _upload_one(
    store: StoreParts,
    remote: FsspecBlobs,
    item: FinalizeItem,
    temps: list[Path],
    uploaded: dict[str, bool],
) -> tuple[str, int, bool]:
    """Hash one file (or spool one stream), upload it unless its digest is there already."""
    file = item.file
    if not isinstance(file, Path):
        temp, sha256, size = store.local.write_temp(file)
        temps.append(temp)
        source, before = temp, None
    else:
        with open(file, "rb", buffering=0) as handle:
            before = os.fstat(handle.fileno())
            sha256, size = hash_stream(handle)
        source = file
    if sha256 in uploaded:  # the same bytes twice in one batch: one upload
        return sha256, size, True
    was_there = remote.upload(source, sha256)
    uploaded[sha256] = was_there
    if before is not None:
        after = os.stat(source)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            if not was_there:
                remote.delete(sha256)
            raise ArtifactStoreError(f"{file} changed while it was being uploaded; try again.")
    if not was_there:
        _log.debug("remote.uploaded", sha256=sha256, bytes=size, uri=remote.uri(sha256))
    return sha256, size, was_there
