"""What the maintenance modules need of an artifact store: its parts, as a protocol.

:class:`~stepkit.artifacts.store.ArtifactStore` offers ``verify``, ``gc``,
``import_manifest`` and remote finalizing by calling :mod:`~stepkit.artifacts.verify`,
:mod:`~stepkit.artifacts.gc`, :mod:`~stepkit.artifacts.manifest` and
:mod:`~stepkit.artifacts.remote`; those take the store as :class:`StoreParts`, so they sit
below it and never import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from stepkit.artifacts.blobs import BlobStore, LocalBlobs
    from stepkit.artifacts.catalog import ArtifactCatalog
    from stepkit.artifacts.fsspec_blobs import FsspecBlobs


class StoreParts(Protocol):
    """A store's root, object stores and catalog, and how it finds an object."""

    root: Path
    local: LocalBlobs
    remote: FsspecBlobs | None
    blobs: BlobStore
    catalog: ArtifactCatalog

    def path(self, sha256: str) -> Path:
        """The local file of an object (a local store's)."""
        ...

    def location_of(self, sha256: str) -> Path | str:
        """Where an object lives: a local path or a remote URL."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the object is stored."""
        ...
