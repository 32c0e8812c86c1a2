"""Artifact store benchmark: the commands users run, beside DVC and the loops they would
write, each bound measured in the same run. Prints one JSON object (medians, seconds).

Usage: python benchmarks/artifacts_bench.py [--rounds 3] [--big-mib 1024] [--small 10000]
       [--api]    (also the in-process batch-API figures of the earlier issue)

Two workloads, each timed as whole processes, interleaved (every round runs every
contender, in an order that rotates, so a slow patch of the shared disk is spread over
all of them), compared by the median of per-round ratios:

- a folder of 10,000 × 4 KiB files, half of them duplicates: ``stepkit artifacts add``
  (move, ``--copy``), ``dvc add`` with the hardlink cache and with its default (copy), and
  the plain loop (read, sha256, write, fsync per file);
- one 1 GiB file: the same commands, the plain loop, and hashlib alone (read and sha256).

DVC runs from the venv ``make bench-env`` makes (``.venv-bench``; never a dependency of
stepkit), in a throw-away ``git init`` + ``dvc init`` folder per run. Without it the DVC
figures are left out and the JSON says so. Inputs are written and flushed to disk before
timing (as a user's finished output would be) and stay in the page cache, for every
contender alike; everything lives in a temp folder under /tmp, removed afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from stepkit.artifacts import ArtifactStore, FinalizeItem, Registration, SQLiteCatalog
from stepkit.artifacts.digest import CHUNK_SIZE

SMALL = 4096
ROOT = Path(__file__).resolve().parent.parent
STEPKIT = str(Path(sys.executable).parent / "stepkit")
DVC = ROOT / ".venv-bench" / "bin" / "dvc"
#: The loops a careful user would write, run as whole processes like every contender.
LOOP_FILES = """
import hashlib, os, sys
src, dst = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(src)):
    with open(os.path.join(src, name), "rb") as f:
        data = f.read()
    hashlib.sha256(data).hexdigest()
    with open(os.path.join(dst, name), "wb", buffering=0) as out:
        out.write(data)
        os.fsync(out.fileno())
"""
LOOP_FILE = """
import hashlib, os, sys
digest, buffer = hashlib.sha256(), bytearray(1 << 20)
view = memoryview(buffer)
with open(sys.argv[1], "rb", buffering=0) as r, open(sys.argv[2], "wb", buffering=0) as w:
    while count := r.readinto(buffer):
        digest.update(view[:count])
        w.write(view[:count])
    os.fsync(w.fileno())
"""
HASH_FILE = """
import hashlib, sys
digest, buffer = hashlib.sha256(), bytearray(1 << 20)
view = memoryview(buffer)
with open(sys.argv[1], "rb", buffering=0) as r:
    while count := r.readinto(buffer):
        digest.update(view[:count])
"""


def flush() -> None:
    """Everything written so far is on disk (a finished output, as users have them), and
    the disk has had a moment to finish the discards of the set-up's deletions, which
    would otherwise land on whichever measurement comes next."""
    os.sync()
    time.sleep(0.5)


def paired(ours: list[float], bound: list[float]) -> float:
    """Median of the per-round ratios: each pair ran back to back, so a slow patch of the
    shared disk hits both sides of a pair rather than one side of the medians."""
    return statistics.median(a / b for a, b in zip(ours, bound, strict=True))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_hash(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def plain_copy(src: Path, dst: Path) -> str:
    """Read, hash, write and fsync: the loop a careful user would write."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as reader, open(dst, "wb", buffering=0) as writer:
        while count := reader.readinto(buffer):
            digest.update(view[:count])
            writer.write(view[:count])
        os.fsync(writer.fileno())
    return digest.hexdigest()


def make_big(path: Path, mib: int) -> None:
    block = os.urandom(64 * 1024 * 1024)
    with open(path, "wb") as handle:
        for index in range(mib // 64):
            handle.write(index.to_bytes(8, "big") + block[8:])
        handle.write(os.urandom((mib % 64) * 1024 * 1024))
    flush()


def bench_big(work: Path, *, mib: int, rounds: int) -> dict[str, object]:
    src = work / "big.bin"
    make_big(src, mib)
    hash_t, move_t, copy_t, loop_t = [], [], [], []
    for round_ in range(rounds):
        hash_t.append(timed(lambda: plain_hash(src)))
        store = ArtifactStore(root=work / f"store-move-{round_}")
        start = time.perf_counter()
        done = store.finalize(src, artifact_id="big", source="bench", producer="b")
        move_t.append(time.perf_counter() - start)
        obj = done.storage_path
        os.chmod(obj, 0o644)
        os.rename(obj, src)  # put the input back for the next round
        store.close()
        shutil.rmtree(store.root)
        flush()
        # Alternate which of the two goes first, so neither always meets the other's
        # write-back on the disk.
        for loop_first in [round_ % 2 == 0, round_ % 2 == 1]:
            if loop_first:
                loop_t.append(timed(lambda: plain_copy(src, work / "loop.bin")))
                (work / "loop.bin").unlink()
            else:
                store = ArtifactStore(root=work / f"store-copy-{round_}")
                copy = partial(
                    store.finalize, src, artifact_id="big", source="bench", producer="b",
                    mode="copy",
                )  # fmt: skip
                copy_t.append(timed(copy))
                store.close()
                shutil.rmtree(store.root)
            flush()
        flush()
    src.unlink()
    h, m, c, lp = (statistics.median(x) for x in (hash_t, move_t, copy_t, loop_t))
    return {
        "size_mib": mib,
        "hashlib_sha256": h,
        "move": m,
        "move_ratio_to_hash": m / h,
        "move_ratio_paired": paired(move_t, hash_t),
        "move_bound_ok": paired(move_t, hash_t) <= 1.15,
        "plain_read_hash_write_fsync": lp,
        "copy": c,
        "copy_ratio_to_loop": c / lp,
        "copy_ratio_paired": paired(copy_t, loop_t),
        "copy_bound_ok": paired(copy_t, loop_t) <= 1.15,
        "rounds_s": {"hash": hash_t, "move": move_t, "loop": loop_t, "copy": copy_t},
    }


def make_small(folder: Path, count: int, *, duplicates: float) -> None:
    folder.mkdir(parents=True)
    unique = max(1, int(count * (1 - duplicates)))
    for index in range(count):
        seed = index % unique
        (folder / f"f{index:05d}.bin").write_bytes(seed.to_bytes(8, "big") * (SMALL // 8))
    flush()


def bench_small(work: Path, *, count: int, rounds: int) -> dict[str, object]:
    move_t, copy_t, loop_t, added = [], [], [], []
    for round_ in range(rounds):
        folder = work / f"small-{round_}"
        make_small(folder, count, duplicates=0.5)
        store = ArtifactStore(root=work / f"store-small-{round_}")
        files = sorted(folder.iterdir())
        items = [FinalizeItem(f, f"a/{f.name}", "bench", "b", "run1") for f in files]
        move_t.append(timed(partial(store.finalize_many, items, mode="move")))
        stored = sum(o.bytes for o in store.blobs.iter_objects())
        added.append(stored)
        store.close()
        shutil.rmtree(store.root)
        shutil.rmtree(folder)

        make_small(folder, count, duplicates=0.0)
        files = sorted(folder.iterdir())
        out = work / f"loop-{round_}"
        out.mkdir()

        def loop(files: list[Path] = files, out: Path = out) -> None:
            for f in files:
                data = f.read_bytes()
                hashlib.sha256(data).hexdigest()
                with open(out / f.name, "wb", buffering=0) as handle:
                    handle.write(data)
                    os.fsync(handle.fileno())

        loop_t.append(timed(loop))
        shutil.rmtree(out)
        flush()
        store = ArtifactStore(root=work / f"store-small-copy-{round_}")
        items = [FinalizeItem(f, f"a/{f.name}", "bench", "b", "run1") for f in files]
        copy_t.append(timed(partial(store.finalize_many, items, mode="copy")))
        store.close()
        shutil.rmtree(store.root)
        shutil.rmtree(folder)
    m, c, lp = (statistics.median(x) for x in (move_t, copy_t, loop_t))
    unique_bytes = int(count * 0.5) * SMALL
    return {
        "files": count,
        "move_50pct_duplicates": m,
        "move_bound_s": 1.0,
        "move_bound_ok": m <= 1.0,
        "move_fastest_round": min(move_t),
        "move_stored_bytes": statistics.median(added),
        "move_unique_input_bytes": unique_bytes,
        "duplicates_add_no_bytes": all(a == unique_bytes for a in added),
        "plain_write_fsync_loop": lp,
        "copy": c,
        "copy_ratio_to_loop": c / lp,
        "copy_ratio_paired": paired(copy_t, loop_t),
        "copy_bound_ok": paired(copy_t, loop_t) <= 1.2,
        "rounds_s": {"move": move_t, "loop": loop_t, "copy": copy_t},
    }


def bench_register(work: Path, *, count: int, rounds: int) -> dict[str, object]:
    times = []
    for round_ in range(rounds):
        catalog = SQLiteCatalog(work / f"catalog-{round_}.sqlite")
        regs = [
            Registration(
                artifact_id=f"work-{i}",
                source=f"https://example.org/{i}.pdf",
                producer="resolver",
                sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                bytes=i,
                storage_uri=f"file:///store/{i}",
                content_type="application/pdf",
                layout_path=None,
                run_id="r1",
            )
            for i in range(count)
        ]
        times.append(timed(partial(catalog.register_bulk, regs)))
        catalog.close()
    median = statistics.median(times)
    # For scale, not a bound: the whole import (read, JSON, pydantic, checks, register) of
    # a manifest whose lines all name objects already in the store.
    store = ArtifactStore(root=work / "store-import")
    digests = [store.put_bytes(b"%d" % i, artifact_id=f"seed{i}", source="s", producer="p").sha256
               for i in range(100)]  # fmt: skip
    manifest = work / "manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as handle:
        for i in range(count):
            row = {"record_type": "manifest", "work_id": f"W{i}", "url": f"https://x.org/{i}.pdf",
                   "classification": "pdf", "path": f"{i}.pdf", "sha256": digests[i % 100],
                   "resolver": "openalex", "run_id": "r1", "dry_run": False}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    start = time.perf_counter()
    report = store.import_manifest(manifest, apply=True)
    import_s = time.perf_counter() - start
    store.close()
    return {
        "import_manifest_end_to_end_lines_per_s": count / import_s,
        "import_manifest_imported": report.imported,
        "records": count,
        "seconds": median,
        "records_per_s": count / median,
        "bound_records_per_s": 100_000,
        "bound_ok": count / median >= 100_000,
        "rounds_s": times,
    }


def bench_verify(work: Path, *, mib: int, rounds: int) -> dict[str, object]:
    store = ArtifactStore(root=work / "store-verify")
    folder = work / "verify-in"
    folder.mkdir()
    files = []
    for index in range(mib // 8):
        path = folder / f"v{index}.bin"
        path.write_bytes(index.to_bytes(8, "big") + os.urandom(8 * 1024 * 1024 - 8))
        files.append(path)
    flush()
    store.finalize_many([FinalizeItem(f, f.name, "bench", "b") for f in files], mode="copy")
    objects = [Path(o.path) for o in store.blobs.iter_objects()]
    raw_t, verify_t = [], []
    for _ in range(rounds):
        raw_t.append(timed(lambda: [plain_hash(p) for p in objects]))
        verify_t.append(timed(store.verify))
    store.close()
    shutil.rmtree(store.root)
    shutil.rmtree(folder)
    raw, ver = statistics.median(raw_t), statistics.median(verify_t)
    return {
        "mib": mib,
        "raw_hash": raw,
        "verify": ver,
        "speed_ratio_to_raw_hash": raw / ver,
        "speed_ratio_paired": paired(raw_t, verify_t),
        "bound_ok": paired(raw_t, verify_t) >= 0.9,
    }


# -- the commands users run, as whole processes ----------------------------------------------


def run_process(command: list[str], *, cwd: Path | None = None, src: Path | None = None) -> float:
    """Seconds one command takes, start to exit; its failure stops the benchmark.

    ``src``: the stepkit code the command runs (``PYTHONPATH``; a previous commit's), else
    this tree's. Bytecode is cached as a user's would be (pip compiles it at install),
    whatever this shell says: with ``PYTHONDONTWRITEBYTECODE`` every stepkit start would
    recompile its modules.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["DVC_NO_ANALYTICS"] = "1"
    if src is not None:
        env["PYTHONPATH"] = str(src)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr.decode()[-2000:]}")
    return seconds


def new_project(folder: Path) -> Path:
    """A stepkit project of its own (its store under ``.stepkit``), on the inputs' disk."""
    (folder / "steps").mkdir(parents=True)
    (folder / "stepkit.toml").write_text(
        '[project]\nname = "bench"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    return folder


def new_dvc_repo(folder: Path, *, hardlink: bool) -> Path:
    """A throw-away ``git init`` + ``dvc init`` folder (hardlink cache, or DVC's default)."""
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    dvc = [str(DVC)]
    subprocess.run([*dvc, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*dvc, "config", "core.analytics", "false"], cwd=folder, check=True)
    if hardlink:
        subprocess.run([*dvc, "config", "cache.type", "hardlink"], cwd=folder, check=True)
    return folder


def stepkit_add(project: Path, target: Path, *, copy: bool) -> list[str]:
    return [
        STEPKIT, "-p", str(project), "artifacts", "add", str(target),
        "--artifact-id", "bench", "--source", "bench", "--producer", "bench",
        *(["--copy"] if copy else []),
    ]  # fmt: skip


def stored_objects(project: Path) -> int:
    return sum(1 for _ in (project / ".stepkit/artifacts/cas/sha256").glob("*/*"))


Contender = Callable[[Path], float]  # given a fresh work folder: set up, time, check
#: Which stepkit code a contender runs: this tree's (None), or a previous commit's ``src``.
#: The previous commit's contenders are named ``previous_…`` for ``stepkit_…``.
Sides = dict[str, Path | None]


def sides_of(previous: Path | None) -> Sides:
    return {"stepkit": None} | ({"previous": previous} if previous is not None else {})


def small_contenders(count: int, *, dvc: bool, sides: Sides) -> dict[str, Contender]:
    """Each contender on a fresh folder of ``count`` files, half of them duplicates."""

    def stepkit(copy: bool, src: Path | None) -> Contender:
        def measure(work: Path) -> float:
            project = new_project(work / "project")
            make_small(work / "small", count, duplicates=0.5)
            seconds = run_process(stepkit_add(project, work / "small", copy=copy), src=src)
            assert stored_objects(project) == count // 2, "not every distinct file stored"
            return seconds

        return measure

    def dvc_add(hardlink: bool) -> Contender:
        def measure(work: Path) -> float:
            repo = new_dvc_repo(work / "repo", hardlink=hardlink)
            make_small(repo / "small", count, duplicates=0.5)
            return run_process([str(DVC), "add", "-q", "small"], cwd=repo)

        return measure

    def loop(work: Path) -> float:
        make_small(work / "small", count, duplicates=0.5)
        (work / "out").mkdir()
        code = [sys.executable, "-c", LOOP_FILES, str(work / "small"), str(work / "out")]
        return run_process(code)

    found: dict[str, Contender] = {}
    for side, src in sides.items():
        found |= {f"{side}_move": stepkit(False, src), f"{side}_copy": stepkit(True, src)}
    found["plain_loop"] = loop
    if dvc:
        found |= {"dvc_hardlink": dvc_add(True), "dvc_copy": dvc_add(False)}
    return found


def big_contenders(pristine: Path, *, dvc: bool, sides: Sides) -> dict[str, Contender]:
    """Each contender on a hardlink to one flushed, cached 1 GiB file (a move takes the
    link, not the bytes, so every round starts from the same file without rewriting it)."""

    def stepkit(copy: bool, src: Path | None) -> Contender:
        def measure(work: Path) -> float:
            project = new_project(work / "project")
            os.link(pristine, work / "big.bin")
            seconds = run_process(stepkit_add(project, work / "big.bin", copy=copy), src=src)
            assert stored_objects(project) == 1
            return seconds

        return measure

    def dvc_add(hardlink: bool) -> Contender:
        def measure(work: Path) -> float:
            repo = new_dvc_repo(work / "repo", hardlink=hardlink)
            os.link(pristine, repo / "big.bin")
            return run_process([str(DVC), "add", "-q", "big.bin"], cwd=repo)

        return measure

    def loop(work: Path) -> float:
        return run_process([sys.executable, "-c", LOOP_FILE, str(pristine), str(work / "o")])

    def hash_alone(work: Path) -> float:
        return run_process([sys.executable, "-c", HASH_FILE, str(pristine)])

    found: dict[str, Contender] = {}
    for side, src in sides.items():
        found |= {f"{side}_move": stepkit(False, src), f"{side}_copy": stepkit(True, src)}
    found |= {"plain_loop": loop, "hashlib_alone": hash_alone}
    if dvc:
        found |= {"dvc_hardlink": dvc_add(True), "dvc_copy": dvc_add(False)}
    return found


def start_contenders(sides: Sides) -> dict[str, Contender]:
    """What a command pays before its work: ``add`` of one 4 KiB file (moved) into a
    fresh project, beside a bare interpreter's start (``python -c pass``)."""

    def stepkit(src: Path | None) -> Contender:
        def measure(work: Path) -> float:
            project = new_project(work / "project")
            (work / "one.bin").write_bytes(os.urandom(SMALL))
            return run_process(stepkit_add(project, work / "one.bin", copy=False), src=src)

        return measure

    found = {f"{side}_add_one_file": stepkit(src) for side, src in sides.items()}
    found["python_start"] = lambda work: run_process([sys.executable, "-c", "pass"])
    return found


def interleaved(
    work: Path, contenders: dict[str, Contender], *, rounds: int, settle: bool = True
) -> dict[str, list[float]]:
    """Every contender once per round, the order rotating by one each round; ``settle``:
    the disk flushed before each (see :func:`flush`)."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            folder = work / f"{name}-{round_}"
            folder.mkdir()
            if settle:
                flush()
            times[name].append(contenders[name](folder))
            shutil.rmtree(folder)
    flush()
    return times


def summary(
    times: dict[str, list[float]], bounds: dict[str, tuple[str, str, float]]
) -> dict[str, object]:
    """Medians; each bound as (ours, theirs, limit) → the paired ratio and whether it holds,
    for this tree and (``previous``) the previous commit; and each of our contenders
    against the previous commit's (``vs_previous``: below 1 is faster now)."""

    def ratios(prefix: str) -> dict[str, object]:
        found: dict[str, object] = {}
        for key, (ours, theirs, limit) in bounds.items():
            ours = ours.replace("stepkit_", prefix, 1)
            if ours in times and theirs in times:
                ratio = paired(times[ours], times[theirs])
                found[key] = {"ratio": round(ratio, 3), "bound": limit, "ok": ratio <= limit}
            elif ours in times:
                found[key] = {"ratio": None, "bound": limit, "ok": None, "missing": theirs}
        return found

    result: dict[str, object] = {
        "medians_s": {name: round(statistics.median(t), 3) for name, t in times.items()},
        "bounds": ratios("stepkit_"),
    }
    if any(name.startswith("previous_") for name in times):
        result["previous"] = ratios("previous_")
        result["vs_previous"] = {
            name: round(paired(t, times[name.replace("stepkit_", "previous_", 1)]), 3)
            for name, t in times.items()
            if name.startswith("stepkit_") and name.replace("stepkit_", "previous_", 1) in times
        }
    result["rounds_s"] = {name: [round(x, 3) for x in t] for name, t in times.items()}
    return result


def bench_cli(
    work: Path, *, count: int, mib: int, rounds: int, start_rounds: int, previous: Path | None
) -> dict[str, object]:
    dvc = DVC.exists()
    sides = sides_of(previous)
    # The first start of each side compiles its bytecode: not a cost users pay each time.
    for side, src in sides.items():
        warm = work / f"warm-{side}"
        warm.mkdir()
        start_contenders({side: src})[f"{side}_add_one_file"](warm)
        shutil.rmtree(warm)
    start = interleaved(work, start_contenders(sides), rounds=start_rounds, settle=False)
    small = interleaved(work, small_contenders(count, dvc=dvc, sides=sides), rounds=rounds)
    pristine = work / "pristine.bin"
    make_big(pristine, mib)
    big = interleaved(work, big_contenders(pristine, dvc=dvc, sides=sides), rounds=rounds)
    pristine.unlink()
    return {
        "dvc": str(DVC) if dvc else "not installed: run `make bench-env` for the DVC figures",
        "start": {
            "what": "stepkit artifacts add of one 4 KiB file, moved, into a fresh project",
            "median_ms": {name: round(1000 * statistics.median(t), 1) for name, t in start.items()},
            **{k: v for k, v in summary(start, {}).items() if k == "vs_previous"},
        },
        "small_files": {
            "files": count,
            "duplicates": 0.5,
            **summary(
                small,
                {
                    "move_to_dvc_hardlink": ("stepkit_move", "dvc_hardlink", 1.0),
                    "copy_to_dvc_copy": ("stepkit_copy", "dvc_copy", 1.2),
                    "copy_to_plain_loop": ("stepkit_copy", "plain_loop", 1.2),
                },
            ),
        },
        "big_file": {
            "size_mib": mib,
            **summary(
                big,
                {
                    "move_to_hashlib_alone": ("stepkit_move", "hashlib_alone", 1.15),
                    "copy_to_plain_loop": ("stepkit_copy", "plain_loop", 1.15),
                    "move_to_dvc_hardlink": ("stepkit_move", "dvc_hardlink", 1.0),
                    "copy_to_dvc_copy": ("stepkit_copy", "dvc_copy", 1.0),
                },
            ),
        },
    }


def commit_of(rev: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()


def source_of(commit: str, into: Path) -> Path:
    """The ``src`` folder of ``commit``, extracted under ``into`` (``git archive``)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--start-rounds", type=int, default=15)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--verify-mib", type=int, default=256)
    parser.add_argument("--api", action="store_true", help="also the batch-API figures")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also run REV's `stepkit artifacts add` in the same interleaved rounds",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stepkit-artifacts-bench-", dir="/tmp"))
    try:
        result: dict[str, object] = {
            "commit": commit_of("HEAD"),
            "rounds": args.rounds,
            "load_average_before": os.getloadavg(),
        }
        previous = None
        if args.against:
            result["previous_commit"] = commit_of(args.against)
            previous = source_of(str(result["previous_commit"]), work / "previous")
        result["cli"] = bench_cli(
            work,
            count=args.small,
            mib=args.big_mib,
            rounds=args.rounds,
            start_rounds=args.start_rounds,
            previous=previous,
        )
        if args.api:
            # One-time process set-up (lazy imports of metrics and logging) is not a
            # finalize cost.
            with ArtifactStore(root=work / "warm-up") as warm:
                warm.put_bytes(b"warm", artifact_id="w", source="s", producer="p")
            shutil.rmtree(work / "warm-up")
            result |= {
                "api_small_files": bench_small(work, count=args.small, rounds=args.rounds),
                "api_big_file": bench_big(work, mib=args.big_mib, rounds=args.rounds),
            }
        result |= {
            "register": bench_register(work, count=args.records, rounds=args.rounds),
            "verify": bench_verify(work, mib=args.verify_mib, rounds=args.rounds),
            "load_average_after": os.getloadavg(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
