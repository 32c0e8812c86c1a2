"""Content-addressed artifact store: objects, readable paths, catalog, verify, gc, import.

``ArtifactStore`` is the entry point; the rest is exposed for callers that need the
records or want to plug in another catalog (:class:`ArtifactCatalog`) or blob store.
"""

from __future__ import annotations

from stepkit.artifacts.catalog import ArtifactCatalog, SQLiteCatalog
from stepkit.artifacts.digest import validate_digest
from stepkit.artifacts.records import ArtifactRecord, Finalized, Registered, Registration
from stepkit.artifacts.store import ArtifactStore, FinalizeItem

__all__ = [
    "ArtifactCatalog",
    "ArtifactRecord",
    "ArtifactStore",
    "FinalizeItem",
    "Finalized",
    "Registered",
    "Registration",
    "SQLiteCatalog",
    "validate_digest",
]
