"""Where object bytes live: the blob interface, and the local-folder implementation.

Objects fan out as ``cas/sha256/<2 hex>/<62 hex>``. A new object is published with
``os.link`` from a file already complete on the same file system (a temp file written
while hashing, or the user's own file for ``move``): the name appears atomically with all
its bytes, and an existing name is a dedup hit, never overwritten. Objects are read-only.

:class:`BlobStore` is what the rest of the store needs that an fsspec (S3) backend could
also provide; the link-based fast paths are :class:`LocalBlobs` only.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Protocol

from stepkit.artifacts.digest import (
    copy_file_hashing,
    copy_hashing,
    is_digest,
    validate_digest,
    write_all,
)
from stepkit.errors import ArtifactStoreError, StepkitError, StoreFullError, StorePermissionError

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
#: errno values that mean "a hardlink is impossible here" (not "something is wrong").
NO_LINK_ERRNOS = frozenset({errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP})
#: errno values of a full disk, and of a write the file system or a folder's mode refuses.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
STORE = "artifact store"


def store_os_error(exc: OSError, *, root: Path, doing: str = "write to") -> Exception:
    """What a user should see for ``exc``, met while changing the store at ``root``: a full
    disk (:class:`StoreFullError`) or a refused write (:class:`StorePermissionError`) said
    as such, naming the store; a refused file outside the store (the caller's own) an
    :class:`ArtifactStoreError` naming it; anything else ``exc`` itself."""
    if isinstance(exc, StepkitError):
        return exc
    if exc.errno in FULL_ERRNOS:
        return StoreFullError(root, STORE)
    if exc.errno in DENIED_ERRNOS:
        named = [os.fsdecode(p) for p in (exc.filename2, exc.filename) if p is not None]
        if named and not any(_inside(p, root) for p in named):
            return ArtifactStoreError(f"Cannot use {named[-1]}: {exc.strerror}.")
        return StorePermissionError(root, STORE, action=doing)
    return exc


def _inside(path: str, root: Path) -> bool:
    absolute = os.path.abspath(path)
    return absolute == str(root) or absolute.startswith(f"{root}{os.sep}")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One file in the object store (or its temp area), as gc and verify see it."""

    sha256: str | None  # None for a temp file
    path: Path | str  # a URL for an object on a remote file system
    bytes: int
    changed_ns: int  # ctime: a link or a chmod updates it, so a fresh publish looks fresh


class BlobStore(Protocol):
    """The object storage the store needs; local folder now, fsspec later."""

    def uri(self, sha256: str) -> str: ...
    def exists(self, sha256: str) -> bool: ...
    def open(self, sha256: str) -> IO[bytes]: ...
    def delete(self, sha256: str) -> int: ...
    def iter_objects(self) -> Iterator[StoredObject]: ...
    def iter_temp(self) -> Iterator[StoredObject]: ...


class LocalBlobs:
    """Objects in a local folder: ``<root>/cas/sha256/ab/cdef…``, temp files in ``<root>/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "cas" / "sha256"
        self.tmp = root / "tmp"
        try:
            self.objects.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise store_os_error(exc, root=root, doing="create") from exc
        self.device = os.stat(self.objects).st_dev
        self._prefix = f"{self.objects}{os.sep}"
        self._uri_prefix = self.objects.as_uri() + "/"  # hex digests need no quoting
        #: Set when a link made a fan-out folder (``ab/``); the store fsyncs ``objects``
        #: then, and clears it.
        self.new_fans = False

    # -- addressing --------------------------------------------------------------------------

    def path(self, sha256: str) -> Path:
        """The object's path; the digest is validated before it becomes part of a path."""
        return Path(self.path_str(sha256))

    def path_str(self, sha256: str) -> str:
        """:meth:`path` as a string (hot loops avoid building ``Path`` objects)."""
        validate_digest(sha256)
        return f"{self._prefix}{sha256[:2]}{os.sep}{sha256[2:]}"

    def uri(self, sha256: str) -> str:
        validate_digest(sha256)
        return f"{self._uri_prefix}{sha256[:2]}/{sha256[2:]}"

    def exists(self, sha256: str) -> bool:
        return os.path.isfile(self.path_str(sha256))

    def open(self, sha256: str) -> IO[bytes]:
        return open(self.path(sha256), "rb")

    # -- writing -----------------------------------------------------------------------------

    def new_temp(self) -> tuple[int, Path]:
        """An open descriptor on a fresh temp file in the store (same file system)."""
        path = self.tmp / f"{os.getpid()}-{secrets.token_hex(8)}.tmp"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return fd, path

    def write_temp(
        self, stream: IO[bytes], *, head: memoryview | None = None
    ) -> tuple[Path, str, int]:
        """Stream into a temp file while hashing; (temp path, sha256, size). Not yet fsynced.

        ``head``: the stream's first bytes, already read from it (see ``read_head``).
        """
        fd, path = self.new_temp()
        try:
            digest, size = hashlib.sha256(), 0
            if head is not None:
                digest.update(head)
                write_all(fd, head)
                size = len(head)
            sha256, size = copy_hashing(stream, fd, digest=digest, size=size)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return path, sha256, size

    def write_temp_bytes(self, data: memoryview | bytes) -> Path:
        """A temp file holding ``data`` (already hashed by the caller). Not yet fsynced."""
        fd, path = self.new_temp()
        try:
            write_all(fd, data)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return path

    def copy_file_temp(self, src: int) -> tuple[Path, str, int]:
        """Copy the regular file open at ``src`` into a temp file, the kernel copying while
        this thread hashes; (temp path, sha256, size). Not yet fsynced."""
        fd, path = self.new_temp()
        try:
            sha256, size = copy_file_hashing(src, fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return path, sha256, size

    def publish_temp(self, temp: Path, sha256: str) -> bool:
        """Publish a complete temp file as the object ``sha256``; True if it already existed.

        The temp file is removed either way: on a dedup hit its bytes are dropped.
        """
        try:
            os.chmod(temp, READ_ONLY)
            return self.link_in(temp, sha256)
        finally:
            temp.unlink(missing_ok=True)

    def link_in(self, source: Path | str, sha256: str) -> bool:
        """Hardlink ``source`` as the object ``sha256``; True if the object already existed.

        Raises ``OSError`` (errno in :data:`NO_LINK_ERRNOS`) when a link is impossible.
        """
        target = self.path_str(sha256)
        try:
            os.link(source, target)
        except FileExistsError:
            return True
        except FileNotFoundError:
            if not os.path.exists(source):
                raise
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
            except OSError as exc:  # a read-only or full store: said as such, naming it
                raise store_os_error(exc, root=self.root) from exc
            self.new_fans = True  # the objects folder gained a name: fsync it too
            try:
                os.link(source, target)
            except FileExistsError:
                return True
        os.chmod(target, READ_ONLY)
        return False

    # -- removal and listing -----------------------------------------------------------------

    def delete(self, sha256: str) -> int:
        """Remove the object; returns the bytes it held (0 if it was not there)."""
        target = self.path(sha256)
        try:
            size = target.stat().st_size
            target.unlink()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise store_os_error(exc, root=self.root, doing="delete from") from exc
        return size

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object file whose name is a valid digest (others are not ours to judge)."""
        if not self.objects.is_dir():
            return
        with os.scandir(self.objects) as fans:
            for fan in fans:
                if len(fan.name) != 2 or not fan.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(fan.path) as entries:
                    for entry in entries:
                        sha256 = fan.name + entry.name
                        if not is_digest(sha256) or not entry.is_file(follow_symlinks=False):
                            continue
                        info = entry.stat(follow_symlinks=False)
                        yield StoredObject(sha256, Path(entry.path), info.st_size, info.st_ctime_ns)

    def iter_temp(self) -> Iterator[StoredObject]:
        if not self.tmp.is_dir():
            return
        with os.scandir(self.tmp) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    yield StoredObject(None, Path(entry.path), info.st_size, info.st_ctime_ns)


#: From this many files on, one ``syncfs`` of the store's file system replaces the
#: per-file fsyncs (Linux only): the same guarantee, one journal commit instead of many.
SYNCFS_FROM = 64


def make_durable(
    files: Iterable[Path | str], folders: Iterable[Path | str], *, device_of: Path | None = None
) -> None:
    """fsync ``files``, then ``folders``; each group in parallel when it has several.

    Files first: a folder fsync makes a name durable, and the name must not outlive its
    bytes. Parallel fsyncs let the file system fold them into fewer journal commits (and a
    stage's handful of files costs about one fsync's wait, not one per file); for a large
    batch ``syncfs`` on ``device_of`` (a folder on the same file system as every file and
    folder given) flushes them all at once.
    """
    file_list = list(dict.fromkeys(files))
    folder_list = list(dict.fromkeys(folders))
    many = len(file_list) + len(folder_list) >= SYNCFS_FROM
    if many and device_of is not None and _syncfs(device_of):
        return
    _fsync_all(file_list)
    _fsync_all(folder_list)


def _fsync_all(paths: list[Path | str]) -> None:
    """fsync every path (a file or a folder), in threads when there are several."""
    if len(paths) == 1:
        _fsync_file(paths[0])
    elif paths:
        with ThreadPoolExecutor(max_workers=min(32, len(paths))) as pool:
            list(pool.map(_fsync_file, paths))


def _fsync_file(path: Path | str) -> None:
    """fsync a file, or a folder (which makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(folder: Path) -> bool:
    """``syncfs(2)`` on the file system holding ``folder``; False where unavailable."""
    libc = _libc()
    if libc is None:
        return False
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs failed: {os.strerror(code)}", str(folder))
    finally:
        os.close(fd)
    return True


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # no C library to load (unusual builds): per-file fsync instead
        return None
    return libc if hasattr(libc, "syncfs") else None
