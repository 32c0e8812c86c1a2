"""The small frozen records the store, the catalog and the CLI pass around."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

#: What registering a (artifact_id, source, producer) key did: first sight, same content
#: again (nothing written), or different content (a new version; the old one is kept).
Status = Literal["new", "present", "new_version"]


def utc_now() -> str:
    """Now, UTC, ISO 8601 with microseconds: sortable as text, sub-second."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Registration:
    """What a caller asks the catalog to record for one artifact."""

    artifact_id: str
    source: str
    producer: str
    sha256: str
    bytes: int
    storage_uri: str
    content_type: str | None = None
    layout_path: str | None = None
    run_id: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.artifact_id, self.source, self.producer)


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One catalog row: a version of an artifact and the object that holds its bytes."""

    id: int
    artifact_id: str
    source: str
    producer: str
    version: int
    sha256: str
    bytes: int
    storage_uri: str
    content_type: str | None
    layout_path: str | None
    run_id: str | None
    created_at: str
    updated_at: str
    verified_at: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.artifact_id, self.source, self.producer)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Registered:
    """The outcome of registering one :class:`Registration`."""

    status: Status
    record: ArtifactRecord


@dataclass(frozen=True, slots=True)
class Finalized:
    """What :meth:`ArtifactStore.finalize` did with one file.

    ``dedup_hit``: the object was already there, the new bytes were dropped.
    ``copied``: the bytes were copied (``mode="copy"``, or a move across file systems).
    ``layout_copied``: the readable path is a copy because a hardlink was impossible.
    """

    record: ArtifactRecord
    status: Status
    dedup_hit: bool
    copied: bool
    storage: str  # the object's absolute path, or its URL in a remote store (strings: a
    layout: str | None  # batch builds thousands); the absolute readable path, if any
    layout_copied: bool = False

    @property
    def storage_path(self) -> Path:
        """The object's local path; a remote store's objects have none (see ``location``)."""
        if "://" in self.storage:
            from stepkit.errors import ArtifactStoreError

            raise ArtifactStoreError(
                f"Object {self.sha256} is at {self.storage}: a remote object has no local path."
            )
        return Path(self.storage)

    @property
    def location(self) -> Path | str:
        """Where the object is: its local path, or its URL when the store is remote."""
        return self.storage if "://" in self.storage else Path(self.storage)

    @property
    def layout_path(self) -> Path | None:
        return Path(self.layout) if self.layout is not None else None

    @property
    def sha256(self) -> str:
        return self.record.sha256

    @property
    def bytes(self) -> int:
        return self.record.bytes
