"""One step node as a pipeline stage: check the cache, run the step, store what it made.

A :class:`NodeTask` is a plain, picklable object, so the orchestrator can run it in a
fresh child process (``subprocess`` mode, the default: the step is isolated from the
runner and from every other step) or on a worker of a process pool or cluster. Its
:meth:`NodeTask.lookup` computes the node's cache key from its files, config and the
digests of its inputs (those its upstreams' outputs carry: nothing is hashed again) and
returns the recorded artifacts on a hit — in the runner for a subprocess stage, so a hit
starts no process; on a miss the step's process runs the script's ``main`` (or the
builder's ``run``) with local folders. Then :meth:`NodeTask.finish` finalizes
every output folder into the content-addressed store under ``runs/<run>/<node>/<output>``
— in the runner's process for a subprocess stage, which has the store's modules loaded
(importing them cost each step's process ~50 ms), elsewhere right after the step — and
:meth:`NodeTask.keep` records them in the cache (for a subprocess stage, once the runner
has committed the node's completion, while its dependents start).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.child import import_script, load_script, namespace, run_as_program, script_entry
from stepkit.errors import StepOutputMissingError
from stepkit.pipeline.invoke import jsonable
from stepkit.plan.cachekey import CacheKey, cache_key, tree_digest  # every node keys itself

if TYPE_CHECKING:
    from stepkit.artifacts.records import Finalized
    from stepkit.envs.store import Environment

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
    #: the step's own environment (per-step mode): its script runs on that interpreter
    venv: Environment | None = None
    #: argument name -> the contract's own flag for it (``job_type`` -> ``--job-type``), for
    #: a script run as a program; an argument not listed is passed as ``--<name>``
    flags: Mapping[str, str] = field(default_factory=dict)
    #: the contract's container paths (``inputs``/``outputs``: logical name -> path): an
    #: input whose path names a file gets that file of its folder, as in the cloud job
    containers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: run the script under bubblewrap, its container paths mapped (stepkit.plan.sandboxed)
    sandbox: bool = False
    #: inputs given from local data (``run --input``), stored before the run: dependency ->
    #: its reference, as an upstream output's (:mod:`stepkit.plan.seeds`)
    seeded: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def key(self, input_digests: Mapping[str, str]) -> Any:
        return cache_key(
            files={role: Path(p) if p else None for role, p in self.files.items()},
            config={"values": dict(self.config), **self.extra_key},
            environment=self.environment,
            arguments=self.arguments,
            inputs=input_digests,
            python_env=self.venv.identity if self.venv is not None else None,
        )

    def lookup(self, context: Any) -> Any:
        """The node's recorded outputs (a :class:`~stepkit.pipeline.invoke.CacheHit`) if its
        key, made from the digests its upstreams' outputs carry, is in the cache; else None.
        For a subprocess stage the runner asks, before it hands the node to a child."""
        from stepkit.pipeline.invoke import CacheHit

        if not self.lookup_cache:
            return None
        _, digests = resolve_inputs(self, context.upstream)
        hit = lookup(self.cache_path, self.key(digests).digest, store_root=self.store_root)
        return None if hit is None else CacheHit(hit)

    def execute(self, context: Any) -> Any:
        """Run the step (:meth:`lookup` found no hit): what :meth:`finish` needs to store
        the outputs the step left in its folders."""
        began = time.perf_counter()
        input_paths, digests = resolve_inputs(
            self, context.upstream, workdir=Path(context.temp_dir()) / "inputs"
        )
        for dependency, container in self.containers.get("inputs", {}).items():
            file = Path(input_paths.get(dependency, "")) / Path(container).name
            if Path(container).suffix and dependency in input_paths and file.is_file():
                input_paths[dependency] = str(file)
        key = self.key(digests)
        workdir = Path(context.temp_dir())
        output_paths = {name: str(workdir / "outputs" / name) for name in self.outputs}
        started = time.perf_counter()
        step_started_at = time.time()
        if self.how == "script" and self.sandbox:
            from stepkit.plan.sandboxed import run_sandboxed

            returned = run_sandboxed(
                node=self.node,
                script=str(self.files["script"]),
                workdir=workdir,
                input_paths=input_paths,
                output_paths=output_paths,
                containers=self.containers,
                environment=self.environment,
                arguments=self.arguments,
                argv=program_argv(self.arguments, self.flags),
                python=str(self.venv.python) if self.venv is not None else None,
            )
        else:
            returned = self._run(input_paths, output_paths, run_id=context.run_id)
        finished = time.perf_counter()
        return {
            "output_paths": output_paths,
            "cache_key": key.digest,
            "key_parts": dict(key.parts),
            "step_seconds": round(finished - started, 6),
            # the hand-off before the step: inputs and cache key
            "prepare_seconds": round(started - began, 6),
            "step_started_at": step_started_at,
            "step_finished_at": time.time(),
            "returned": jsonable(returned),
        }

    def finish(self, context: Any, made: Mapping[str, Any]) -> dict[str, Any]:
        """Store what the step made (one batch); returns the artifact references. Runs in
        the runner's process for a subprocess stage (see ``pipeline.stage``), where the
        store's modules are loaded already."""
        finalize_started_at = time.time()
        began = time.perf_counter()
        outputs = self._finalize(made["output_paths"], run_id=context.run_id)
        outputs[NODE_INFO] = {
            "cache_key": made["cache_key"],
            "step_seconds": made["step_seconds"],
            "prepare_seconds": made["prepare_seconds"],
            # the hand-off after the step: storing its outputs
            "finalize_seconds": round(time.perf_counter() - began, 6),
            "step_started_at": made["step_started_at"],
            "step_finished_at": made["step_finished_at"],
            "finalize_started_at": finalize_started_at,
            "returned": made["returned"],
        }
        if self.venv is not None:
            outputs[NODE_INFO]["python_env"] = {
                "key": self.venv.key,
                "python": self.venv.python_version,
                "lock_digest": self.venv.lock_digest,
            }
        return outputs

    def keep(self, context: Any, made: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Remember the stored outputs in the cache under the step's key, for later runs:
        for a subprocess stage the runner does it while the dependents start."""
        record(
            self.cache_path,
            CacheKey(made["cache_key"], made["key_parts"]),
            node=self.node,
            run_id=context.run_id,
            outputs=outputs,
            store_root=self.store_root,
            catalog_path=self.catalog_path,
        )

    def _run(
        self, input_paths: dict[str, str], output_paths: dict[str, str], *, run_id: str
    ) -> Any:
        """Call the script's ``main`` (or the builder's ``run``) in this process, the stage's
        own, loading files as the tester's child does (:mod:`stepkit.child`)."""
        for folder in output_paths.values():
            Path(folder).mkdir(parents=True, exist_ok=True)
        if self.venv is not None and self.how == "script":
            from stepkit.envs.launch import run_step_script

            return run_step_script(
                self.venv,
                node=self.node,
                script=Path(str(self.files["script"])),
                input_paths=input_paths,
                output_paths=output_paths,
                environ=self.environment,
                arguments=self.arguments,
                argv=program_argv(self.arguments, self.flags),
            )
        saved = {k: os.environ.get(k) for k in self.environment}
        os.environ.update(self.environment)  # scripts may read os.environ as well
        try:
            if self.how == "script":  # as a test's child runs it: main(...), or a program
                request = script_entry(str(self.files["script"]))
                sys.path.insert(0, request["root"])
                try:
                    if request["entry"] == "program":
                        argv = program_argv(self.arguments, self.flags)
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
        """Store every output folder as one batch (one sync pass, one catalog transaction)
        and describe each by the digests the store computed: no output is hashed twice."""
        from stepkit.artifacts.backends import open_catalog
        from stepkit.artifacts.items import FinalizeItem, files_under
        from stepkit.artifacts.store import ArtifactStore

        items: list[FinalizeItem] = []
        owners: list[tuple[str, str]] = []  # (output, relative path) of each item
        for name, folder in output_paths.items():
            path = Path(folder)
            files = files_under(path) if path.is_dir() else []
            if not files:
                raise StepOutputMissingError(self.node, name, folder)
            for file, rel in files:
                items.append(
                    FinalizeItem(
                        file,
                        artifact_id=f"{run_id}/{self.node}/{name}/{rel}",
                        source=f"stage:{self.node}/{name}",
                        producer=self.node,
                        run_id=run_id,
                        layout=f"runs/{run_id}/{self.node}/{name}/{rel}",
                    )
                )
                owners.append((name, rel))
        store = ArtifactStore(root=self.store_root, catalog=open_catalog(self.catalog_path))
        try:
            done = store.finalize_many(items)
        finally:
            store.close()
        by_output: dict[str, list[tuple[str, Finalized]]] = {name: [] for name in output_paths}
        for (output, rel), finalized in zip(owners, done, strict=True):
            by_output[output].append((rel, finalized))
        refs: dict[str, Any] = {}
        for name, mine in by_output.items():
            objects = {rel: f.sha256 for rel, f in mine}
            refs[name] = {
                # remote: no readable folder; the path names where the run's outputs
                # would be, and "objects" is what the next node downloads
                "path": f"{store.location}/runs/{run_id}/{self.node}/{name}"
                if store.remote is not None
                else str(store.root / "runs" / run_id / self.node / name),
                "digest": tree_digest(objects),
                "files": len(mine),
                "bytes": sum(f.bytes for _, f in mine),
                "dedup_hits": sum(1 for _, f in mine if f.dedup_hit),
            }
            if store.remote is not None:
                refs[name] |= {"store": store.location, "objects": objects}
        return refs


def program_argv(values: Mapping[str, str], flags: Mapping[str, str]) -> list[str]:
    """Job arguments as the script's command line: each under the contract's own flag."""
    return [
        part for dest, value in values.items() for part in (flags.get(dest, f"--{dest}"), value)
    ]


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
    given = dict(task.seeded)
    given |= {dep: upstream[node][output] for dep, (node, output) in task.inputs.items()}
    for dependency, ref in given.items():
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


def _object_path(root: Path, sha256: str) -> Path:
    """Where a local store keeps the object of ``sha256`` (see ``artifacts.blobs``)."""
    from stepkit.artifacts.digest import validate_digest

    validate_digest(sha256)
    return root / "cas" / "sha256" / sha256[:2] / sha256[2:]


def _portable(ref: Mapping[str, Any], store_root: Path, owners: Mapping[str, str]) -> Any:
    """A local output as the cache keeps it: its readable folder relative to the store
    root and the digest of every file in it (``contents``), never an absolute path — so a
    copied or moved project resolves it in its own store."""
    folder = Path(ref["path"])
    rel = folder.relative_to(store_root).as_posix()
    contents = {
        layout.removeprefix(f"{rel}/"): sha256
        for layout, sha256 in owners.items()
        if layout.startswith(f"{rel}/")
    }
    return {k: v for k, v in ref.items() if k != "path"} | {"layout": rel, "contents": contents}


def _local_layouts(ref: Mapping[str, Any], store_root: Path) -> list[str]:
    """The readable paths (relative to the store root) of a local output's files."""
    folder = Path(ref["path"])
    try:
        rel = folder.relative_to(store_root).as_posix()
    except ValueError:
        return []
    return [f"{rel}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*") if p.is_file()]


def _resolved(ref: Mapping[str, Any], store_root: Path) -> dict[str, Any] | None:
    """A recorded output resolved in this project's store, or ``None`` (a miss) when an
    object is gone or fails the cheap checks: its readable file is the object (same inode)
    or as long as it, and the objects add up to the bytes recorded."""
    if "objects" in ref:  # a remote store: every object must still be there
        from stepkit.artifacts.fsspec_blobs import FsspecBlobs

        blobs = FsspecBlobs(ref["store"])
        ok = all(blobs.exists(sha256) for sha256 in ref["objects"].values())
        return dict(ref) if ok else None
    if "layout" not in ref:
        return None  # an entry from before outputs were kept by digest: run again
    folder = store_root / ref["layout"]
    total = 0
    for rel, sha256 in ref["contents"].items():
        try:
            stored = os.stat(_object_path(store_root, sha256))
            readable = os.stat(folder / rel)
        except (OSError, ValueError):  # missing (gc, quarantined by verify) or a bad digest
            return None
        same = (readable.st_dev, readable.st_ino) == (stored.st_dev, stored.st_ino)
        if not same and readable.st_size != stored.st_size:
            return None
        total += stored.st_size
    if total != ref.get("bytes", total) or len(ref["contents"]) != ref.get("files", 0):
        return None  # an object lost bytes (or files went missing from the record)
    return {k: v for k, v in ref.items() if k != "contents"} | {"path": str(folder)}


def lookup(cache_path: str, digest: str, *, store_root: str) -> dict[str, Any] | None:
    """The recorded outputs of a cache key, resolved in the store at ``store_root``, if
    every object they name is still there and sound."""
    from stepkit.plan.cache_backends import open_cache

    cache = open_cache(cache_path)
    try:
        entry = cache.get(digest)
    finally:
        cache.close()
    if entry is None:
        return None
    root = Path(store_root).resolve() if "://" not in store_root else Path()
    outputs: dict[str, Any] = {}
    for name, ref in entry.outputs.items():
        if name == NODE_INFO:
            outputs[name] = ref
            continue
        resolved = _resolved(ref, root)
        if resolved is None:
            return None  # the store lost it (gc, a wiped folder, a corrupt object): run again
        outputs[name] = resolved
    return outputs


def record(
    cache_path: str,
    key: Any,
    *,
    node: str,
    run_id: str,
    outputs: Mapping[str, Any],
    store_root: str,
    catalog_path: str,
) -> None:
    """Remember what this key made, for the next run: local outputs by digest, relative to
    the store (see :func:`_portable`)."""
    from stepkit.plan.cache_backends import open_cache

    portable = dict(outputs)
    local = {
        name: ref
        for name, ref in outputs.items()
        if name != NODE_INFO and "objects" not in ref and "path" in ref
    }
    if local:
        from stepkit.artifacts.backends import open_catalog

        root = Path(store_root).resolve()
        layouts = [layout for ref in local.values() for layout in _local_layouts(ref, root)]
        catalog = open_catalog(catalog_path)
        try:
            owners = catalog.layout_owners(layouts)
        finally:
            catalog.close()
        for name, ref in local.items():
            if Path(ref["path"]).is_relative_to(root):  # else kept as is: never a hit
                portable[name] = _portable(ref, root, owners)
    cache = open_cache(cache_path)
    try:
        cache.put(key.digest, node=node, run_id=run_id, outputs=portable, parts=key.parts)
    finally:
        cache.close()
