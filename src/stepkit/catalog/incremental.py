"""Resolving again only the steps a change can reach.

Resolution is keyed: a file reads and writes step names (``n:``), entry points (``e:``)
and contract modules (``r:``), see :meth:`_Resolver.file_keys`. Files that share no key,
directly or through other files, never affect each other's result; so after a change,
the files connected (through the old or the new keys of the changed files) are resolved
again, on their own, and spliced into the previous result. Everything else is kept. The
result equals a whole resolution (a property test holds it to that).

``links`` (key → paths), kept in the index, is what finds the connected files without
reading every summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from copy import copy
from dataclasses import dataclass
from typing import Any, Final

from stepkit.catalog.listing import build_listing
from stepkit.catalog.resolution import FileEntry, RegistryFacts, _Resolver

#: Above this share of all files, resolving everything is as cheap and simpler.
MAX_SHARE: Final = 0.25


@dataclass(frozen=True, slots=True)
class Resolution:
    """A resolution with what an incremental one needs next time."""

    resolved: dict[str, Any]  # {"steps", "unmatched", "problems"}
    links: MutableMapping[str, list[str]]  # key → paths of the files that may touch it
    listing: list[tuple[Any, ...]]


def resolve_all(
    files: Iterable[FileEntry],
    registry: RegistryFacts,
    workspace_order: Sequence[str],
    by_stem: Mapping[str, str],
    *,
    in_order: bool = False,
) -> Resolution:
    """A whole resolution, with its links and list rows (``in_order``: see
    :meth:`_Resolver.run`)."""
    links: dict[str, list[str]] = {}
    resolver = _Resolver(registry, workspace_order, by_stem)
    resolved = resolver.run(files, links, in_order=in_order)
    listing = build_listing(resolved["steps"], registry.definitions, workspace_order)
    return Resolution(resolved, links, listing)


def resolve_changed(
    *,
    previous: Resolution,
    old: Mapping[str, FileEntry | None],
    current: Mapping[str, FileEntry],
    entry: Callable[[str], FileEntry],
    registry: RegistryFacts,
    workspace_order: Sequence[str],
    by_stem: Mapping[str, str],
    total: int,
) -> Resolution | None:
    """The resolution after the files in ``old`` changed, from ``previous``; None when a
    whole resolution is the better deal (the change reaches too many files).

    Args:
        old: changed path → its entry before (None: it is new).
        current: changed path → its entry now (absent: it is gone).
        entry: path → its current :class:`FileEntry` (any indexed file).
        previous: the resolution before the change (left as it is).
        total: how many files are indexed.
    """
    keyer = _Resolver(registry, workspace_order, by_stem)
    links = copy(previous.links)  # new lists where they change: ``previous`` stays whole
    seeds: set[str] = set()
    for path, before in old.items():
        if before is not None:
            for key in keyer.file_keys(before):
                seeds.add(key)
                paths = links.get(key)
                if paths is not None and path in paths:
                    rest = [p for p in paths if p != path]
                    if rest:
                        links[key] = rest
                    else:
                        del links[key]
        now = current.get(path)
        if now is not None:
            for key in keyer.file_keys(now):
                seeds.add(key)
                links[key] = [*links.get(key, ()), path]
    # every file connected to the seeds, and every key they touch
    keys = set(seeds)
    frontier = list(seeds)
    reached: dict[str, FileEntry] = {p: f for p, f in current.items()}
    limit = max(50, MAX_SHARE * total)
    while frontier:
        key = frontier.pop()
        for path in links.get(key, ()):
            if path in reached:
                continue
            f = entry(path)
            reached[path] = f
            if len(reached) > limit:
                return None
            for other in keyer.file_keys(f):
                if other not in keys:
                    keys.add(other)
                    frontier.append(other)
    names = {key[2:] for key in keys if key.startswith("n:")}
    part = keyer.fresh().run(reached.values())
    if not names.issuperset(part["steps"]):
        return None  # cannot happen while file_keys is a superset; never splice wrongly
    gone = set(old) | set(reached)
    steps = {n: parts for n, parts in previous.resolved["steps"].items() if n not in names}
    steps.update(part["steps"])
    resolved = {
        "steps": {name: steps[name] for name in sorted(steps)},
        "unmatched": sorted(
            [u for u in previous.resolved["unmatched"] if u[0] not in gone] + part["unmatched"]
        ),
        "problems": sorted(
            [p for p in previous.resolved["problems"] if p[0] not in gone] + part["problems"],
            key=lambda p: (p[0], p[2]),
        ),
    }
    touched = {n for n in names if n in part["steps"] or n in registry.definitions}
    rows = [row for row in previous.listing if row[0] not in names]
    rows += build_listing(
        {n: part["steps"][n] for n in touched if n in part["steps"]},
        {n: registry.definitions[n] for n in touched if n in registry.definitions},
        workspace_order,
    )
    rows.sort(key=lambda row: row[0])
    return Resolution(resolved, links, rows)
