"""A node's input seeded from a local file or folder: ``run --input NODE.INPUT=PATH``,
``test pipeline --data NODE.INPUT=PATH`` — so a pipeline whose source step reads a service
can run from local data.

:func:`parse_seeds` reads the options and checks each against the nodes' contracts (with
close names). For a run, :func:`store_seeds` finalizes each seed into the artifact store
(copied: the user's files stay where they are) and describes it as an upstream output is
described — a readable folder and the digest of its files — so the seeded node reads a
folder of the store and its cache key holds the seed's content.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.errors import PlanError
from stepkit.names import close_matches

if TYPE_CHECKING:
    from stepkit.components import ScriptContract

#: node -> input -> the local file or folder given for it
Seeds = Mapping[str, Mapping[str, Path]]


def parse_seeds(
    given: Mapping[str, str],
    contracts: Mapping[str, ScriptContract | None],
    *,
    option: str,
) -> dict[str, dict[str, Path]]:
    """``NODE.INPUT`` → ``PATH`` options as seeds, each checked: a node of the DAG, an input
    its contract declares, a path that exists.

    Raises:
        PlanError: naming the node, with close names for a node or input.
    """
    seeds: dict[str, dict[str, Path]] = {}
    for key, value in given.items():
        node, dot, logical = key.partition(".")
        if not dot or not node or not logical:
            raise PlanError(key, f"{option} takes NODE.INPUT=PATH, not {key}={value}.")
        if node not in contracts:
            raise PlanError(
                node,
                f"{option} names no node of the DAG.",
                suggestions=close_matches(node, contracts),
            )
        contract = contracts[node]
        declared = contract.expected_input_paths if contract is not None else {}
        if logical not in declared:
            raise PlanError(
                node,
                f"{option} names no input {logical!r} of its contract "
                f"(inputs: {', '.join(declared) or 'none'}).",
                suggestions=close_matches(logical, declared),
            )
        path = Path(value).expanduser().absolute()
        if not path.exists():
            raise PlanError(node, f"{option} {key}: {path} does not exist.")
        seeds.setdefault(node, {})[logical] = path
    return seeds


def store_seeds(
    seeds: Seeds, *, store_root: str, catalog_path: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """Finalize every seed into the store in one batch; node -> input -> its reference
    (``path``, ``digest``, ``files``, ``bytes``; ``store`` and ``objects`` when remote)."""
    from stepkit.artifacts.backends import open_catalog
    from stepkit.artifacts.items import FinalizeItem, files_under
    from stepkit.artifacts.store import ArtifactStore
    from stepkit.plan.cachekey import tree_digest

    batch = uuid.uuid4().hex[:12]  # readable folders of this batch; the objects dedup
    items: list[FinalizeItem] = []
    owners: list[tuple[str, str, str]] = []  # (node, input, relative path) of each item
    for node, inputs in seeds.items():
        for logical, path in inputs.items():
            files = files_under(path) if path.is_dir() else [(path, path.name)]
            if not files:
                raise PlanError(node, f"the seed of input {logical!r} is an empty folder ({path}).")
            for file, rel in files:
                items.append(
                    FinalizeItem(
                        file,
                        artifact_id=f"seed/{batch}/{node}/{logical}/{rel}",
                        source=f"seed:{path}",
                        producer="seed",
                        layout=f"seeds/{batch}/{node}/{logical}/{rel}",
                    )
                )
                owners.append((node, logical, rel))
    store = ArtifactStore(root=store_root, catalog=open_catalog(catalog_path))
    try:
        done = store.finalize_many(items, mode="copy")
    finally:
        store.close()
    objects: dict[tuple[str, str], dict[str, str]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for (node, logical, rel), finalized in zip(owners, done, strict=True):
        objects.setdefault((node, logical), {})[rel] = finalized.sha256
        sizes[(node, logical)] = sizes.get((node, logical), 0) + finalized.bytes
    refs: dict[str, dict[str, dict[str, Any]]] = {}
    for (node, logical), mine in objects.items():
        folder = f"seeds/{batch}/{node}/{logical}"
        ref: dict[str, Any] = {
            "path": f"{store.location}/{folder}" if store.remote else str(store.root / folder),
            "digest": tree_digest(mine),
            "files": len(mine),
            "bytes": sizes[(node, logical)],
        }
        if store.remote is not None:
            ref |= {"store": store.location, "objects": mine}
        refs.setdefault(node, {})[logical] = ref
    return refs
