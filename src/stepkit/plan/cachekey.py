"""The cache key of a step node: what must be unchanged for its recorded outputs to stand.

The key hashes the script (or the builder that runs the step), the contract, the spec,
the resolved config values with the environment and arguments made from them, the digests
of every input the node reads, stepkit's major version and, for a step that runs in its
own environment, that environment's identity (other resolved versions: another key).
Change any of them and the node runs again — and so, because their inputs' digests then
change, do its descendants whose inputs actually changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepkit.version import __version__

MAJOR_VERSION = __version__.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class CacheKey:
    """A node's key and what went into it (kept so ``runs show`` can say why it missed)."""

    digest: str
    parts: Mapping[str, Any]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def tree_digest(entries: Mapping[str, str]) -> str:
    """One digest for a folder from its files' relative paths and SHA-256 digests."""
    lines = "".join(f"{sha}  {rel}\n" for rel, sha in sorted(entries.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def folder_digest(folder: Path) -> str:
    """:func:`tree_digest` of every file under ``folder`` (hashing each)."""
    entries = {
        path.relative_to(folder).as_posix(): file_digest(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    return tree_digest(entries)


def cache_key(
    *,
    files: Mapping[str, Path | None],
    config: Mapping[str, Any],
    environment: Mapping[str, str],
    arguments: Mapping[str, str],
    inputs: Mapping[str, str],
    python_env: str | None = None,
) -> CacheKey:
    """The key of one node. ``files`` maps a role (script, contract, spec, builder) to a file;
    ``inputs`` maps each input's logical name to its content digest; ``python_env`` is the
    identity of the step's own environment (its key and its lock's digest), None for a step
    that runs in stepkit's own (keys made before per-step environments stay valid)."""
    parts: dict[str, Any] = {
        "stepkit": MAJOR_VERSION,
        "files": {
            role: file_digest(path) if path else None for role, path in sorted(files.items())
        },
        "config": config,
        "environment": dict(sorted(environment.items())),
        "arguments": dict(sorted(arguments.items())),
        "inputs": dict(sorted(inputs.items())),
    }
    if python_env is not None:
        parts["python_env"] = python_env
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return CacheKey(hashlib.sha256(canonical.encode()).hexdigest(), parts)


def changed_parts(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Which parts differ between two keys, as dotted names (``files.script``, ``config``)."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping) and key in ("files", "inputs"):
            out.extend(f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        elif a != b:
            out.append(key)
    return out
