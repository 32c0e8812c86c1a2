"""One step node as a pipeline stage: check the cache, run the step, store what it made.

A :class:`NodeTask` is a plain, picklable object, so the orchestrator can run it in a
fresh child process (``subprocess`` mode, the default: the step is isolated from the
runner and from every other step) or on a worker of a process pool or cluster. In that
process it computes the node's cache key from its files, config and the digests of its
inputs; on a hit it returns the recorded artifacts; on a miss it runs the script's ``main``
(or the builder's ``run``) with local folders, then finalizes every output folder into
the content-addressed store under ``runs/<run>/<node>/<output>``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepkit.child import import_script, load_script, namespace, run_as_program, script_entry
from stepkit.errors import StepOutputMissingError
from stepkit.pipeline.invoke import jsonable

#: The output key where a node records what it is (cache key, what main returned, timing).
NODE_INFO = "_node"


@dataclass(frozen=True, slots=True)
class NodeTask:
    """Everything a worker needs to run one node; paths are absolute strings."""

    node: str
    how: str  # "script" | "builder"
    files: Mapping[str, str | None]  # script, contract, spec, config, builder
    config_class: str
    builder_class: str | None
    config: Mapping[str, Any]
    environment: Mapping[str, str]
    arguments: Mapping[str, str]
    inputs: Mapping[str, tuple[str, str]]  # dependency -> (upstream node, its output)
    outputs: tuple[str, ...]
    store_root: str
    catalog_path: str  # a path, or a postgresql:// URL (see artifacts.catalog.open_catalog)
    cache_path: str  # a path, or a postgresql:// URL (see plan.cache.open_cache)
    lookup_cache: bool = True  # False: run even on a hit (--no-cache, --refresh); still record
    extra_key: Mapping[str, Any] = field(default_factory=dict)

    def key(self, input_digests: Mapping[str, str]) -> Any:
        from stepkit.plan.cachekey import cache_key

        return cache_key(
            files={role: Path(p) if p else None for role, p in self.files.items()},
            config={"values": dict(self.config), **self.extra_key},
            environment=self.environment,
            arguments=self.arguments,
            inputs=input_digests,
        )

    def execute(self, context: Any) -> Any:
        """Run in the worker: cache hit, or run and finalize; returns artifact references."""
        from stepkit.pipeline.invoke import CacheHit

        input_paths, digests = resolve_inputs(
            self, context.upstream, workdir=Path(context.temp_dir()) / "inputs"
        )
        key = self.key(digests)
        if self.lookup_cache:
            hit = lookup(self.cache_path, key.digest)
            if hit is not None:
                return CacheHit(hit)
        workdir = Path(context.temp_dir())
        output_paths = {name: str(workdir / "outputs" / name) for name in self.outputs}
        started = time.perf_counter()
        returned = self._run(input_paths, output_paths, run_id=context.run_id)
        seconds = time.perf_counter() - started
        outputs = self._finalize(output_paths, run_id=context.run_id)
        outputs[NODE_INFO] = {
            "cache_key": key.digest,
            "step_seconds": round(seconds, 6),
            "returned": jsonable(returned),
        }
        record(self.cache_path, key, node=self.node, run_id=context.run_id, outputs=outputs)
        return outputs

    def _run(
        self, input_paths: dict[str, str], output_paths: dict[str, str], *, run_id: str
    ) -> Any:
        """Call the script's ``main`` (or the builder's ``run``) in this process, the stage's
        own, loading files as the tester's child does (:mod:`stepkit.child`)."""
        for folder in output_paths.values():
            Path(folder).mkdir(parents=True, exist_ok=True)
        saved = {k: os.environ.get(k) for k in self.environment}
        os.environ.update(self.environment)  # scripts may read os.environ as well
        try:
            if self.how == "script":  # as a test's child runs it: main(...), or a program
                request = script_entry(str(self.files["script"]))
                sys.path.insert(0, request["root"])
                try:
                    if request["entry"] == "program":
                        argv = [p for k, v in self.arguments.items() for p in (f"--{k}", v)]
                        run_as_program({**request, "argv": argv})
                        return None
                    main = getattr(import_script(request), "main", None)
                    if not callable(main):
                        raise AttributeError(
                            f"{Path(request['script']).name} has no callable main()"
                        )
                    return main(
                        dict(input_paths),
                        dict(output_paths),
                        dict(self.environment),
                        namespace(dict(self.arguments)),
                    )
                finally:
                    sys.path.remove(request["root"])
            configs = load_script(str(self.files["config"]), "__stepkit_config__")
            config = getattr(configs, self.config_class).model_validate(dict(self.config))
            builders = load_script(str(self.files["builder"]), "__stepkit_builder__")
            builder = getattr(builders, str(self.builder_class))(config)
            context = {
                "inputs": dict(input_paths),
                "outputs": dict(output_paths),
                "node": self.node,
                "run_id": run_id,
                "environment": dict(self.environment),
                "arguments": dict(self.arguments),
            }
            return builder.run(context)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _finalize(self, output_paths: Mapping[str, str], *, run_id: str) -> dict[str, Any]:
        from stepkit.artifacts.catalog import open_catalog
        from stepkit.artifacts.store import ArtifactStore
        from stepkit.plan.cachekey import tree_digest

        refs: dict[str, Any] = {}
        store = ArtifactStore(root=self.store_root, catalog=open_catalog(self.catalog_path))
        try:
            for name, folder in output_paths.items():
                path = Path(folder)
                if not path.is_dir() or not any(p.is_file() for p in path.rglob("*")):
                    raise StepOutputMissingError(self.node, name, folder)
                done = store.finalize_folder(
                    path, run_id=run_id, stage=self.node, output=name, producer=self.node
                )
                objects = {f.record.artifact_id.split(f"/{name}/", 1)[1]: f.sha256 for f in done}
                refs[name] = {
                    # remote: no readable folder; the path names where the run's outputs
                    # would be, and "objects" is what the next node downloads
                    "path": f"{store.location}/runs/{run_id}/{self.node}/{name}"
                    if store.remote is not None
                    else str(store.root / "runs" / run_id / self.node / name),
                    "digest": tree_digest(objects),
                    "files": len(done),
                    "bytes": sum(f.bytes for f in done),
                    "dedup_hits": sum(1 for f in done if f.dedup_hit),
                }
                if store.remote is not None:
                    refs[name] |= {"store": store.location, "objects": objects}
        finally:
            store.close()
        return refs


@dataclass(frozen=True, slots=True)
class CachedNode:
    """A node whose outputs the runner already found in the cache: nothing to run."""

    outputs: Mapping[str, Any]

    def execute(self, context: Any) -> Any:
        from stepkit.pipeline.invoke import CacheHit

        return CacheHit(dict(self.outputs))


def resolve_inputs(
    task: NodeTask, upstream: Mapping[str, Mapping[str, Any]], *, workdir: Path | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Each dependency's local folder and content digest, from its upstream's outputs.

    An output in a remote store (it names its ``objects``) is downloaded into
    ``workdir/<dependency>`` first: the step always reads a local folder.
    """
    paths: dict[str, str] = {}
    digests: dict[str, str] = {}
    for dependency, (node, output) in task.inputs.items():
        ref = upstream[node][output]
        paths[dependency] = ref["path"]
        digests[dependency] = ref["digest"]
        if "objects" in ref and workdir is not None:
            paths[dependency] = str(_download(ref, workdir / dependency))
    return paths, digests


def _download(ref: Mapping[str, Any], folder: Path) -> Path:
    """Fetch every object of a remote output into ``folder`` under its relative path."""
    import shutil

    from stepkit.artifacts.fsspec_blobs import FsspecBlobs

    blobs = FsspecBlobs(ref["store"])
    for rel, sha256 in ref["objects"].items():
        target = folder / rel
        if not target.resolve().is_relative_to(folder.resolve()):
            from stepkit.errors import PathEscapeError

            raise PathEscapeError(rel, folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        with blobs.open(sha256) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)
    return folder


def _still_stored(ref: Mapping[str, Any]) -> bool:
    """Whether a recorded output is still in the store (its folder, or its remote objects)."""
    if "objects" in ref:
        from stepkit.artifacts.fsspec_blobs import FsspecBlobs

        blobs = FsspecBlobs(ref["store"])
        return all(blobs.exists(sha256) for sha256 in ref["objects"].values())
    return Path(ref["path"]).is_dir()


def lookup(cache_path: str, digest: str) -> dict[str, Any] | None:
    """The recorded outputs of a cache key, if every folder they name is still there."""
    from stepkit.plan.cache import open_cache

    cache = open_cache(cache_path)
    try:
        entry = cache.get(digest)
    finally:
        cache.close()
    if entry is None:
        return None
    outputs = dict(entry.outputs)
    for name, ref in outputs.items():
        if name != NODE_INFO and not _still_stored(ref):
            return None  # the store lost it (gc, a wiped folder): run again
    return outputs


def record(
    cache_path: str, key: Any, *, node: str, run_id: str, outputs: Mapping[str, Any]
) -> None:
    """Remember what this key made, for the next run."""
    from stepkit.plan.cache import open_cache

    cache = open_cache(cache_path)
    try:
        cache.put(key.digest, node=node, run_id=run_id, outputs=outputs, parts=key.parts)
    finally:
        cache.close()
