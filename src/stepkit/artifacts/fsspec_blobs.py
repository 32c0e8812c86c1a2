"""Objects on any fsspec file system (S3 and compatible, through s3fs): ``<url>/cas/sha256/ab/…``.

A finalize hashes the bytes locally first (the digest is the object's name), then uploads
each digest once: an existence check (``HEAD``) before the ``PUT``, so a dedup hit sends
no bytes. On S3 a ``PUT`` is atomic (the object appears whole or not at all) and large
files go up as multipart uploads in :data:`MULTIPART_CHUNK` parts (from twice that size
on); on other file systems an object is written under a temporary name and moved into place.

Credentials come only from the file system's own chain (for S3: ``AWS_ACCESS_KEY_ID``…,
``AWS_PROFILE``, ``~/.aws``, ``AWS_ENDPOINT_URL`` for an S3-compatible server); stepkit never
reads or stores them. Listings are not cached: other runners add objects all the time.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from stepkit.artifacts.blobs import StoredObject
from stepkit.artifacts.digest import is_digest, validate_digest
from stepkit.errors import ArtifactStoreError

#: Part size of an S3 multipart upload; s3fs switches to multipart from twice this size.
MULTIPART_CHUNK = 8 * 1024 * 1024
#: Protocols whose single ``PUT`` is atomic, so objects need no temporary name.
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs"})


def is_url(root: object) -> bool:
    """True for a store root given as a URL (``s3://bucket/prefix``), not a local path."""
    if not isinstance(root, str) or "://" not in root:
        return False
    return urlsplit(root).scheme not in ("", "file")


class FsspecBlobs:
    """Objects under ``url`` on the fsspec file system its scheme names."""

    def __init__(self, url: str) -> None:
        import fsspec  # type: ignore[import-untyped]  # fsspec ships no type hints

        parts = urlsplit(url)
        if parts.username or parts.password:
            raise ArtifactStoreError(
                f"artifacts.root {_redact(url)!r}: credentials never go in the URL; use "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials."
            )
        self.url = url.rstrip("/")
        try:
            self.fs, base = fsspec.core.url_to_fs(self.url, use_listings_cache=False)
        except ImportError as exc:
            raise ArtifactStoreError(
                f"artifacts.root {self.url!r} needs an fsspec driver that is not installed "
                f"({exc}); for S3: pip install 'stepkit[s3]'."
            ) from exc
        self.base = base.rstrip("/")
        self.objects = f"{self.base}/cas/sha256"
        protocols = self.fs.protocol
        names = {protocols} if isinstance(protocols, str) else set(protocols)
        self.atomic_put = bool(names & ATOMIC_PUT)
        self.is_s3 = bool(names & {"s3", "s3a"})

    # -- addressing --------------------------------------------------------------------------

    def key(self, sha256: str) -> str:
        """The object's path on the file system (bucket/prefix/cas/sha256/ab/cdef…)."""
        validate_digest(sha256)
        return f"{self.objects}/{sha256[:2]}/{sha256[2:]}"

    def uri(self, sha256: str) -> str:
        validate_digest(sha256)
        return f"{self.url}/cas/sha256/{sha256[:2]}/{sha256[2:]}"

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self.key(sha256)))

    def open(self, sha256: str) -> IO[bytes]:
        handle: IO[bytes] = self.fs.open(self.key(sha256), "rb")
        return handle

    def info(self, sha256: str) -> dict[str, Any]:
        """The file system's description of the object (size, ETag, LastModified…)."""
        info: dict[str, Any] = self.fs.info(self.key(sha256))
        return info

    # -- writing -----------------------------------------------------------------------------

    def upload(self, local: Path, sha256: str) -> bool:
        """Upload the complete local file ``local`` as object ``sha256``, once.

        Returns True when the object was already there (a dedup hit: nothing is sent).
        """
        target = self.key(sha256)
        if self.fs.exists(target):
            return True
        if self.is_s3:
            self.fs.put_file(str(local), target, chunksize=MULTIPART_CHUNK)
        elif self.atomic_put:
            self.fs.put_file(str(local), target)
        else:
            temp = f"{target}.tmp-{secrets.token_hex(8)}"
            self.fs.makedirs(temp.rpartition("/")[0], exist_ok=True)
            self.fs.put_file(str(local), temp)
            self.fs.mv(temp, target)
        return False

    # -- removal and listing -----------------------------------------------------------------

    def delete(self, sha256: str) -> int:
        """Remove the object; returns the bytes it held (0 if it was not there)."""
        target = self.key(sha256)
        try:
            size = int(self.fs.info(target)["size"])
        except FileNotFoundError:
            return 0
        self.fs.rm_file(target)
        return size

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object whose name is a valid digest, with its last-modified time."""
        try:
            found = self.fs.find(self.objects, detail=True)
        except FileNotFoundError:
            return
        prefix = f"{self.objects}/"
        for name, info in sorted(found.items()):
            rel = name.removeprefix(prefix)
            fan, _, rest = rel.partition("/")
            sha256 = fan + rest
            if len(fan) != 2 or "/" in rest or not is_digest(sha256):
                continue
            yield StoredObject(sha256, self.uri(sha256), int(info["size"]), _modified_ns(info))

    def iter_temp(self) -> Iterator[StoredObject]:
        """Nothing: uploads leave no temp objects (an aborted S3 multipart upload leaves
        parts that only a bucket lifecycle rule removes)."""
        return iter(())


def _modified_ns(info: dict[str, Any]) -> int:
    """Last-modified time in ns from an fsspec ``info`` (S3: LastModified; local: mtime)."""
    for key in ("LastModified", "last_modified", "mtime", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, int | float):
            return int(value * 1e9)
    return time.time_ns()  # unknown age: treated as fresh, so gc never collects it


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts._replace(netloc=host).geturl()
