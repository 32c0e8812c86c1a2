"""The content-addressed artifact store: finalize files into objects, record them, find them.

``finalize`` hashes a file (SHA-256, 1 MiB chunks), publishes it as
``cas/sha256/ab/cdef…`` with ``os.link`` (``move``: the file itself, no byte copied;
``copy``: a temp file written while hashing), makes the object and its folder durable,
gives it a readable path, and only then commits its catalog record. A batch does the same
for many files with one parallel fsync pass and one catalog transaction.

A full disk or a refused write (a read-only mount, a folder's mode) is said as such, naming
the store (:func:`stepkit.artifacts.blobs.store_os_error`), and nothing of the batch is
recorded: its temp files and new readable paths are removed, and an object it already
published stays unreferenced until gc collects it (after the grace period, since another
finalize may have found it meanwhile).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from stepkit.artifacts import metrics
from stepkit.artifacts.backends import catalog_location, open_catalog
from stepkit.artifacts.blobs import (
    NO_LINK_ERRNOS,
    BlobStore,
    LocalBlobs,
    make_durable,
    store_os_error,
)
from stepkit.artifacts.catalog import CATALOG_FILE, ArtifactCatalog, SQLiteCatalog
from stepkit.artifacts.digest import (
    CHUNK_SIZE,
    KERNEL_COPY_FROM,
    hash_stream,
    read_head,
    validate_digest,
)
from stepkit.artifacts.fsspec_blobs import FsspecBlobs, is_url
from stepkit.artifacts.items import ADD_BATCH, Mode, Progress, add_items, files_under
from stepkit.artifacts.items import FinalizeItem as FinalizeItem  # its home before items.py
from stepkit.artifacts.layout import default_layout, place
from stepkit.artifacts.layout import remove as remove_layout
from stepkit.artifacts.lock import store_lock
from stepkit.artifacts.records import ArtifactRecord, Finalized, Registration
from stepkit.errors import ArtifactNotFoundError, ArtifactStoreError, InvalidRegistrationError
from stepkit.observability import get_logger

if TYPE_CHECKING:
    from stepkit.artifacts.gc import GcReport
    from stepkit.artifacts.manifest import ImportReport
    from stepkit.artifacts.verify import VerifyReport
    from stepkit.project import Project

#: An object younger than this is never collected: it may belong to a finalize in flight.
DEFAULT_GRACE = timedelta(hours=1)


def _warn(event: str, *, path: str, detail: str | None = None) -> None:
    """A warning event (structlog, set up on first use rather than at import)."""
    get_logger("stepkit.artifacts").warning(event, path=path, detail=detail)


#: Batches at least this large spread per-file work over a few threads: it is mostly
#: system calls (open, read, link, unlink) and hashing, which all release the GIL.
PARALLEL_FROM = 64
_WORKERS = 4


def _each(work: Callable[[_Staged], None], entries: list[_Staged]) -> None:
    """Run ``work`` on every entry, in a few threads for a large batch; errors propagate."""
    if len(entries) < PARALLEL_FROM:
        for entry in entries:
            work(entry)
        return

    def run(share: list[_Staged]) -> None:
        for entry in share:
            work(entry)

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        for _ in pool.map(run, [entries[i::_WORKERS] for i in range(_WORKERS)]):
            pass


def _open_source(file: Path) -> IO[bytes]:
    """Open a file to finalize; a missing file or a folder is a one-line store error."""
    try:
        return open(file, "rb", buffering=0)
    except FileNotFoundError:
        raise ArtifactStoreError(f"{file}: no such file to finalize.") from None
    except IsADirectoryError:
        raise ArtifactStoreError(
            f"{file} is a folder: finalize its files (finalize_folder, or add FOLDER)."
        ) from None
    except PermissionError:
        raise ArtifactStoreError(f"{file}: permission denied, so it cannot be read.") from None


def _regular_fd(handle: IO[bytes]) -> int | None:
    """The descriptor of ``handle`` when it is a regular file (not a pipe, not in memory)."""
    try:
        fd = handle.fileno()
    except (AttributeError, OSError, ValueError):  # io.BytesIO: UnsupportedOperation
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _check_unchanged(file: Path, before: os.stat_result, after: os.stat_result) -> None:
    """A file whose size or mtime moved while it was read gives no trustworthy digest."""
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise ArtifactStoreError(f"{file} changed while it was being hashed; try again.")


@dataclass(slots=True)
class _Staged:
    """A file on its way in: hashed, maybe published, not yet recorded."""

    item: FinalizeItem
    sha256: str = ""
    size: int = 0
    temp: Path | None = None  # copy: the temp file until published
    dedup_hit: bool = False
    copied: bool = False
    new_object: bool = False
    layout_path: str | None = None
    layout_copied: bool = False


class ArtifactStore:
    """Objects under ``root`` plus a catalog (SQLite at ``catalog_path`` by default)."""

    def __init__(
        self,
        *,
        root: Path | str,
        catalog_path: Path | str | None = None,
        catalog: ArtifactCatalog | None = None,
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        path = Path(catalog_path).expanduser().resolve() if catalog_path else None
        #: Objects on a remote file system (``root`` is a URL such as ``s3://bucket/prefix``);
        #: then ``root`` is a local spool folder next to the catalog (lock, temp files).
        self.remote: FsspecBlobs | None = None
        if is_url(root):
            self.remote = FsspecBlobs(str(root))
            if path is None and catalog is None:
                raise ArtifactStoreError(
                    f"artifacts.root {self.remote.url!r} is remote: give catalog_path "
                    "(the catalog stays local or in PostgreSQL, never in the bucket)."
                )
            spool = path.parent if path else Path(tempfile.gettempdir()) / "stepkit"
            root = spool / "spool"
        self.root = Path(root).expanduser().resolve()  # once: relative roots never leak
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise store_os_error(exc, root=self.root, doing="create") from exc
        self._root_prefix = f"{self.root}{os.sep}"
        self.local = LocalBlobs(self.root)
        self.blobs: BlobStore = self.remote or self.local
        #: Where the objects are, as people write it: the URL, or the local folder.
        self.location = self.remote.url if self.remote else str(self.root)
        if catalog is None:
            catalog = SQLiteCatalog(path or self.root / CATALOG_FILE)
        self.catalog: ArtifactCatalog = catalog
        self.grace = grace

    @classmethod
    def for_project(cls, project: Project) -> ArtifactStore:
        """The project's store: ``project.artifacts_root`` (a folder, or a URL such as
        ``s3://bucket/prefix``); the catalog ``[artifacts] catalog_url`` names (SQLite in
        ``project.state_dir`` by default, or PostgreSQL)."""
        return cls(root=project.artifacts_root, catalog=open_catalog(catalog_location(project)))

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> ArtifactStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    def path(self, sha256: str) -> Path:
        """Where the object lives (it may not exist; see :meth:`exists`); local stores only."""
        if self.remote is not None:
            raise ArtifactStoreError(
                f"Object {sha256} is at {self.remote.uri(sha256)}: a remote object has no "
                "local path; use open()."
            )
        return self.local.path(sha256)

    def uri(self, sha256: str) -> str:
        """The object's URL (``file://…`` locally, ``s3://…`` on S3)."""
        return self.blobs.uri(sha256)

    def location_of(self, sha256: str) -> Path | str:
        """The local path of the object, or its URL when the store is remote."""
        return self.uri(sha256) if self.remote is not None else self.local.path(sha256)

    def exists(self, sha256: str) -> bool:
        return self.blobs.exists(sha256)

    def open(self, sha256: str) -> IO[bytes]:
        """Read the object's bytes; :class:`ArtifactNotFoundError` if it is not stored."""
        try:
            return self.blobs.open(sha256)
        except FileNotFoundError:
            raise ArtifactNotFoundError(sha256, what="object") from None

    def show(self, artifact_id: str) -> list[ArtifactRecord]:
        """Every version of ``artifact_id`` (all sources and producers), oldest first."""
        records = self.catalog.by_artifact_id(artifact_id)
        if not records:
            raise ArtifactNotFoundError(artifact_id, known=self.catalog.artifact_ids())
        return records

    def where(self, sha256: str) -> list[ArtifactRecord]:
        """The records whose bytes are the object ``sha256``."""
        records = self.catalog.by_sha256(validate_digest(sha256))
        if not records:
            raise ArtifactNotFoundError(sha256, what="record with digest")
        return records

    # -- writing -----------------------------------------------------------------------------

    def finalize(
        self,
        path_or_stream: Path | str | IO[bytes],
        /,
        *,
        artifact_id: str,
        source: str,
        producer: str,
        run_id: str | None = None,
        content_type: str | None = None,
        mode: Mode = "move",
        keep: bool = False,
        layout: str | None = None,
    ) -> Finalized:
        """Store one file (or stream) and record it; see the module docstring."""
        file = Path(path_or_stream) if isinstance(path_or_stream, str | Path) else path_or_stream
        item = FinalizeItem(file, artifact_id, source, producer, run_id, content_type, layout)
        return self.finalize_many([item], mode=mode, keep=keep)[0]

    def put_bytes(
        self,
        data: bytes,
        *,
        artifact_id: str,
        source: str,
        producer: str,
        run_id: str | None = None,
        content_type: str | None = None,
        layout: str | None = None,
    ) -> Finalized:
        """Store ``data`` as an artifact (always a copy)."""
        return self.finalize(
            io.BytesIO(data),
            artifact_id=artifact_id,
            source=source,
            producer=producer,
            run_id=run_id,
            content_type=content_type,
            mode="copy",
            layout=layout,
        )

    def add(
        self,
        paths: Sequence[Path | str],
        *,
        artifact_id: str,
        source: str,
        producer: str,
        run_id: str | None = None,
        content_type: str | None = None,
        mode: Mode = "move",
        keep: bool = False,
        on_progress: Progress | None = None,
    ) -> list[Finalized]:
        """Finalize files and folders (``stepkit artifacts add``): see ``items.add_items``.

        Everything goes through :meth:`finalize_many`, in batches of :data:`ADD_BATCH`.
        """
        items = add_items(
            [Path(p) for p in paths],
            artifact_id=artifact_id,
            source=source,
            producer=producer,
            run_id=run_id,
            content_type=content_type,
        )
        return self.finalize_batches(items, mode=mode, keep=keep, on_progress=on_progress)

    def finalize_batches(
        self,
        items: Sequence[FinalizeItem],
        *,
        mode: Mode = "move",
        keep: bool = False,
        on_progress: Progress | None = None,
    ) -> list[Finalized]:
        """:meth:`finalize_many` over ``items`` in batches of :data:`ADD_BATCH`."""
        done: list[Finalized] = []
        for start in range(0, len(items), ADD_BATCH):
            batch = items[start : start + ADD_BATCH]
            done += self.finalize_many(batch, mode=mode, keep=keep, on_progress=on_progress)
        return done

    def finalize_folder(
        self,
        folder: Path,
        *,
        run_id: str,
        stage: str,
        output: str,
        producer: str | None = None,
        source: str | None = None,
        mode: Mode = "move",
        keep: bool = False,
        on_progress: Progress | None = None,
    ) -> list[Finalized]:
        """Finalize every file under a stage's output folder as one batch.

        Each file becomes artifact ``<run>/<stage>/<output>/<relative path>`` with the
        readable path ``runs/<run>/<stage>/<output>/<relative path>``.
        """
        folder = Path(folder)
        items = []
        for file, rel in files_under(folder):
            items.append(
                FinalizeItem(
                    file,
                    artifact_id=f"{run_id}/{stage}/{output}/{rel}",
                    source=source or f"stage:{stage}/{output}",
                    producer=producer or stage,
                    run_id=run_id,
                    layout=f"runs/{run_id}/{stage}/{output}/{rel}",
                )
            )
        return self.finalize_many(items, mode=mode, keep=keep, on_progress=on_progress)

    def finalize_many(
        self,
        items: Sequence[FinalizeItem],
        *,
        mode: Mode = "move",
        keep: bool = False,
        on_progress: Progress | None = None,
    ) -> list[Finalized]:
        """Finalize a batch: objects fsynced together, records committed in one transaction.

        The store lock is held shared throughout, so gc cannot collect an object between
        its publish (or dedup hit) and the commit of the record that references it.
        """
        if mode not in ("move", "copy"):
            raise ArtifactStoreError(f"Unknown finalize mode {mode!r}: use 'move' or 'copy'.")
        for item in items:  # refused before a byte is written
            for field in ("artifact_id", "source", "producer"):
                value = getattr(item, field)
                if not isinstance(value, str) or not value.strip():
                    raise InvalidRegistrationError(field, value)
        if self.remote is not None:
            from stepkit.artifacts.remote import finalize_remote

            return finalize_remote(
                self, self.remote, items, mode=mode, keep=keep, on_progress=on_progress
            )
        staged = [_Staged(item) for item in items]
        try:
            with store_lock(self.root, exclusive=False):
                try:
                    folders = self._publish(staged, mode=mode, on_progress=on_progress)
                except BaseException:
                    for entry in staged:
                        if entry.temp is not None:
                            entry.temp.unlink(missing_ok=True)
                    raise
                results = self._record(staged, folders)
        except OSError as exc:
            said = store_os_error(exc, root=self.root)
            if said is exc:
                raise
            raise said from exc
        if mode == "move":
            self._release_sources(staged, keep=keep)
        metrics.dedup_hits(sum(1 for s in staged if s.dedup_hit))
        metrics.bytes_stored(sum(s.size for s in staged if s.new_object))
        return results

    def _publish(
        self, staged: list[_Staged], *, mode: Mode, on_progress: Progress | None
    ) -> set[str]:
        """Hash every file and put its object in place, its bytes durable; returns the
        folders whose fsync makes the new names durable (done with the readable paths')."""

        claimed: set[str] = set()
        claiming = threading.Lock()

        def claim(sha256: str) -> bool:
            """True for the first file of the batch with these bytes, unless already stored."""
            with claiming:
                if sha256 in claimed:
                    return False
                claimed.add(sha256)
            return not self.local.exists(sha256)

        def stage(entry: _Staged) -> None:
            file = entry.item.file
            if isinstance(file, Path):
                with _open_source(file) as handle:
                    linked = mode == "move" and self._link_in_place(entry, file, handle)
                    if not linked:
                        if mode == "move":
                            _warn("finalize.cross_device_copy", path=str(file))
                        self._copy_in(entry, handle, claim, name=file)
            else:
                self._copy_in(entry, file, claim, name=None)
            entry.copied = entry.temp is not None
            if on_progress is not None:
                on_progress(1)

        def publish(entry: _Staged) -> None:
            assert entry.temp is not None
            entry.dedup_hit = self.local.publish_temp(entry.temp, entry.sha256)
            entry.temp = None
            entry.new_object = not entry.dedup_hit

        _each(stage, staged)
        temps = [e for e in staged if e.temp is not None]
        # Bytes durable before a name that could outlive them points at them: the temp
        # files (not yet linked) and the moved files (their names become durable only
        # with their folders, below).
        moved = [self.local.path_str(e.sha256) for e in staged if e.new_object]
        make_durable([*(str(e.temp) for e in temps), *moved], (), device_of=self.root)
        for entry in temps:
            publish(entry)
        folders = {self.local.path_str(e.sha256)[:-63] for e in staged if e.new_object}
        if self.local.new_fans:
            folders.add(str(self.local.objects))
            self.local.new_fans = False
        return folders

    def _copy_in(
        self,
        entry: _Staged,
        handle: IO[bytes],
        claim: Callable[[str], bool],
        *,
        name: Path | None,
    ) -> None:
        """``copy``: hash the bytes and write them into a temp file in the store.

        A large regular file is copied by the kernel while it is hashed. A small one is
        read once into memory and hashed first: when its object is stored already (or
        another file of the batch brings it), nothing is written at all — a temp file
        written only to be deleted costs more than the copy (freeing synced blocks is slow
        on file systems that discard them).
        """
        fd = _regular_fd(handle)
        if fd is not None and name is not None:
            before = os.fstat(fd)
            if before.st_size >= KERNEL_COPY_FROM:
                entry.temp, entry.sha256, entry.size = self.local.copy_file_temp(fd)
                _check_unchanged(name, before, os.fstat(fd))
                return
        head = read_head(handle)
        if len(head) == CHUNK_SIZE:  # maybe more to come: stream the rest
            entry.temp, entry.sha256, entry.size = self.local.write_temp(handle, head=head)
            return
        entry.sha256, entry.size = hashlib.sha256(head).hexdigest(), len(head)
        if claim(entry.sha256):
            entry.temp = self.local.write_temp_bytes(head)
        else:
            entry.dedup_hit = True

    def _link_in_place(self, entry: _Staged, file: Path, handle: IO[bytes]) -> bool:
        """``move``: hash the open file where it lies and hardlink it as the object.

        Returns False (nothing done) when the file is on another file system.
        """
        before = os.fstat(handle.fileno())
        if before.st_dev != self.local.device:
            return False
        src = os.path.abspath(file)
        if src.startswith(self._root_prefix):
            raise ArtifactStoreError(f"{file} is inside the store; finalize files from outside it.")
        entry.sha256, entry.size = hash_stream(handle)
        _check_unchanged(file, before, os.fstat(handle.fileno()))
        try:
            entry.dedup_hit = self.local.link_in(src, entry.sha256)
        except OSError as exc:
            if exc.errno not in NO_LINK_ERRNOS:
                raise
            # Not linkable here (another user's file under protected hardlinks, a file
            # system without links): copied instead, from the start.
            handle.seek(0)
            return False
        entry.new_object = not entry.dedup_hit
        return True

    def _record(self, staged: list[_Staged], folders: set[str]) -> list[Finalized]:
        """Give each object its readable path, make every new name durable in one pass
        (``folders``: the objects'), then commit all records in one transaction."""
        current = self.catalog.latest(
            (s.item.artifact_id, s.item.source, s.item.producer) for s in staged
        )
        made: set[str] = set()
        wanted: dict[int, str] = {}
        for index, entry in enumerate(staged):
            item = entry.item
            existing = current.get((item.artifact_id, item.source, item.producer))
            if existing is not None and existing.sha256 == entry.sha256:
                entry.layout_path = existing.layout_path
            else:
                wanted[index] = (
                    item.layout
                    if item.layout is not None
                    else default_layout(
                        artifact_id=item.artifact_id,
                        source=item.source,
                        producer=item.producer,
                        run_id=item.run_id,
                        name=item.file.name if isinstance(item.file, Path) else None,
                    )
                )
        asked = set(wanted.values())
        owners = self.catalog.layout_owners(asked)

        def owner(path: str) -> str | None:
            return owners.get(path) if path in asked else self.catalog.layout_owner(path)

        registrations = []
        placed: list[str] = []  # the readable paths this batch made: removed if it fails
        try:
            for index, entry in enumerate(staged):
                item = entry.item
                if index in wanted:
                    entry.layout_path, entry.layout_copied, touched = place(
                        root=self.root,
                        rel=wanted[index],
                        obj=self.local.path_str(entry.sha256),
                        sha256=entry.sha256,
                        owner=owner,
                        made=made,
                        created=folders,
                    )
                    if touched is not None:
                        folders.add(touched)
                        placed.append(entry.layout_path)
                    if entry.layout_copied:
                        _warn("layout.copied", path=str(entry.layout_path), detail=entry.sha256)
                registrations.append(
                    Registration(
                        artifact_id=item.artifact_id,
                        source=item.source,
                        producer=item.producer,
                        sha256=entry.sha256,
                        bytes=entry.size,
                        storage_uri=self.blobs.uri(entry.sha256),
                        content_type=item.content_type,
                        layout_path=entry.layout_path,
                        run_id=item.run_id,
                    )
                )
            make_durable((), folders, device_of=self.root)
            outcomes = self.catalog.register_many(registrations)
        except BaseException:
            for rel in placed:
                with contextlib.suppress(OSError):  # best effort: the error raised says why
                    remove_layout(self.root, rel)
            raise
        return [
            Finalized(
                record=outcome.record,
                status=outcome.status,
                dedup_hit=entry.dedup_hit,
                copied=entry.copied,
                storage=self.local.path_str(entry.sha256),
                layout=f"{self._root_prefix}{outcome.record.layout_path}"
                if outcome.record.layout_path
                else None,
                layout_copied=entry.layout_copied,
            )
            for entry, outcome in zip(staged, outcomes, strict=True)
        ]

    def _release_sources(self, staged: list[_Staged], *, keep: bool) -> None:
        """After the commit: remove moved sources, or keep them as read-only links."""

        def release(entry: _Staged) -> None:
            file = entry.item.file
            if not isinstance(file, Path):
                return
            if not keep:
                try:
                    os.unlink(file)
                except FileNotFoundError:  # already gone: nothing to remove
                    pass
                except OSError as exc:  # recorded already: the source stays, a second copy
                    _warn("finalize.source_not_removed", path=str(file), detail=str(exc))
            elif entry.dedup_hit:
                # Keep the path, but as a link to the stored object: one copy of the bytes.
                tmp = file.with_name(f".{file.name}.stepkit-link")
                try:
                    os.link(self.local.path_str(entry.sha256), tmp)
                except OSError as exc:  # another file system: the kept file stays as it is
                    _warn("finalize.keep_not_linked", path=str(file), detail=str(exc))
                    return
                os.replace(tmp, file)

        _each(release, staged)

    # -- removal -----------------------------------------------------------------------------

    def forget(self, record_id: int) -> ArtifactRecord:
        """Delete one record (and its readable path when no other record uses it).

        The object stays until gc finds it unreferenced.
        """
        with store_lock(self.root, exclusive=False):
            deleted = self.catalog.delete_records([record_id])
            if not deleted:
                raise ArtifactNotFoundError(str(record_id), what="record")
            record = deleted[0]
            if record.layout_path and self.catalog.layout_owner(record.layout_path) is None:
                remove_layout(self.root, record.layout_path)
        return record

    # -- maintenance (each in its own module) ------------------------------------------------

    def verify(
        self,
        *,
        sample: int | None = None,
        since: str | None = None,
        on_progress: Progress | None = None,
    ) -> VerifyReport:
        """Re-hash stored objects; see :func:`stepkit.artifacts.verify.verify`."""
        from stepkit.artifacts.verify import verify

        return verify(self, sample=sample, since=since, on_progress=on_progress)

    def gc(
        self,
        *,
        apply: bool = False,
        older_than: timedelta | None = None,
        keep_last: int = 1,
        grace: timedelta | None = None,
        force: bool = False,
    ) -> GcReport:
        """Find (and with ``apply`` remove) orphans; see :func:`stepkit.artifacts.gc.collect`
        (``force``: even when the catalog looks emptied or damaged)."""
        from stepkit.artifacts.gc import collect

        return collect(
            self,
            apply=apply,
            older_than=older_than,
            keep_last=keep_last,
            grace=self.grace if grace is None else grace,
            force=force,
        )

    def import_manifest(
        self,
        manifest: Path,
        *,
        apply: bool = False,
        hash_missing: bool = False,
        allowed_roots: Sequence[Path] | None = None,
        on_progress: Progress | None = None,
    ) -> ImportReport:
        """Backfill from a JSON-lines manifest; see :func:`stepkit.artifacts.manifest`."""
        from stepkit.artifacts.manifest import import_manifest

        return import_manifest(
            self,
            manifest,
            apply=apply,
            hash_missing=hash_missing,
            allowed_roots=allowed_roots,
            on_progress=on_progress,
        )
