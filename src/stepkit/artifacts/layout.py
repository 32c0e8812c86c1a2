"""Readable paths into the store: ``runs/<run>/<stage>/<name>``, ``sources/<host>/<id>/<name>``.

A readable path is a hardlink to its object (a copy when a link is impossible, and then
reported), never a second source of truth. Two different contents never share a path:
when the wanted path already holds other bytes (on disk or in the catalog), the new one
gets ``<stem>~<first 12 hex of its digest><suffix>``, and the catalog records the name used.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from stepkit.artifacts.blobs import NO_LINK_ERRNOS, READ_ONLY
from stepkit.errors import PathEscapeError

#: Top-level names under the store root that belong to the store itself.
RESERVED = frozenset({"cas", "tmp"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=,-]+")


def safe_part(text: str, *, fallback: str = "_") -> str:
    """One path component made of safe characters (never empty, never ``.`` or ``..``)."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or fallback
    return cleaned[:120]


def check_relative(rel: str, root: Path) -> str:
    """``rel`` as a clean relative POSIX path under ``root``, or :class:`PathEscapeError`.

    Refused: absolute paths, empty, ``.`` or ``..`` parts, and the store's own top-level
    names (``cas``, ``tmp``, hidden files, the catalog).
    """
    parts = rel.replace("\\", "/").split("/")
    first = parts[0]
    if (
        not first
        or first in RESERVED
        or first.startswith((".", "catalog."))
        or any(part in ("..", ".", "") for part in parts)
    ):
        raise PathEscapeError(rel, root)
    return "/".join(parts)


def default_layout(
    *,
    artifact_id: str,
    source: str,
    producer: str,
    run_id: str | None,
    name: str | None,
) -> str:
    """The readable path the policy gives an artifact when the caller names none.

    With a run: ``runs/<run>/<producer>/<name>``; otherwise
    ``sources/<source host or scheme>/<artifact id>/<name>``.
    """
    base = safe_part(name or _name_from_source(source) or artifact_id, fallback="artifact")
    if run_id:
        return f"runs/{safe_part(run_id)}/{safe_part(producer)}/{base}"
    parts = urlsplit(source)
    host = parts.hostname or parts.scheme or "local"
    return f"sources/{safe_part(host)}/{safe_part(artifact_id)}/{base}"


def _name_from_source(source: str) -> str:
    path = unquote(urlsplit(source).path)
    return PurePosixPath(path).name if path else ""


def candidates(rel: str, sha256: str) -> Iterator[str]:
    """The names tried in order for ``rel``: as asked, then with the digest in the stem."""
    yield rel
    folder, _, name = rel.rpartition("/")
    dot = name.rfind(".")
    stem, suffix = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    prefix = f"{folder}/" if folder else ""
    yield f"{prefix}{stem}~{sha256[:12]}{suffix}"
    yield f"{prefix}{stem}~{sha256}{suffix}"


def place(
    *,
    root: Path,
    rel: str,
    obj: str,
    sha256: str,
    owner: Callable[[str], str | None],
    made: set[str],
    created: set[str],
) -> tuple[str, bool, str | None]:
    """Make a readable path for object ``obj``; (relative path used, copied?, folder touched).

    ``owner(path)`` says which digest the catalog has recorded for a readable path. A path
    already holding the same object (same inode) is reused; one holding other bytes, or
    recorded for another digest, is skipped for the next candidate name. ``made`` caches
    the folders known to exist during a batch; ``created`` collects the parents of the
    folders this made (their fsync makes the new folders themselves durable).
    """
    base = f"{root}{os.sep}"
    for candidate in candidates(check_relative(rel, root), sha256):
        recorded = owner(candidate)
        if recorded is not None and recorded != sha256:
            continue
        target = base + candidate
        folder = os.path.dirname(target)
        if folder not in made:
            make_folders(folder, created)
            made.add(folder)
        try:
            os.link(obj, target)
            return candidate, False, folder
        except FileExistsError:
            existing, obj_stat = os.stat(target), os.stat(obj)
            same = (existing.st_dev, existing.st_ino) == (obj_stat.st_dev, obj_stat.st_ino)
            if same or recorded == sha256:  # ours already (a link, or a copy made earlier)
                return candidate, not same, None
            continue
        except OSError as exc:
            if exc.errno not in NO_LINK_ERRNOS:
                raise
            _copy_read_only(obj, target)
            return candidate, True, folder
    raise FileExistsError(f"No free readable path for {rel!r} (digest {sha256})")


def make_folders(folder: str, created: set[str]) -> None:
    """``os.makedirs(folder, exist_ok=True)``, adding to ``created`` the parent of every
    folder it makes: a new folder's name is durable once its parent is fsynced."""
    missing = []
    here = folder
    while not os.path.isdir(here):
        missing.append(here)
        here = os.path.dirname(here)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another writer
            os.mkdir(path)
        created.add(os.path.dirname(path))


def _copy_read_only(obj: str, target: str) -> None:
    folder, _, name = target.rpartition(os.sep)
    tmp = f"{folder}{os.sep}.{name}.copy"
    try:
        shutil.copyfile(obj, tmp)
        os.chmod(tmp, READ_ONLY)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):  # a full disk: no half copy left
            os.unlink(tmp)
        raise


def remove(root: Path, rel: str) -> bool:
    """Remove a readable path (and empty folders above it, up to the root)."""
    target = root / check_relative(rel, root)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    folder = target.parent
    while folder != root:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return True
