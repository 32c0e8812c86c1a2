"""End-to-end pipeline figures; prints one JSON object of medians.

- planning a 1,000-node DAG over a 10,000-step catalog (in process, catalog index warm);
- a fully cached re-run of the example, as a whole ``stepkit run`` process;
- stepkit's overhead on an uncached run of the example: ``stepkit run --no-cache -j 1``
  against the same scripts run one after another, each in a fresh ``python`` process on
  the same inputs (what a user would do without stepkit), measured in the same run;
- the hand-off gaps of uncached parallel runs: for every stage with upstreams, from the
  end of the step that finished last among them to the start of its own step, split into
  where the time goes (the upstream's report and process exit, its finalize and cache
  record, the runner's turn, the new process's start and the node's preparation), beside
  the bound of 50 ms plus hashing the upstream's new bytes at the disk speed measured here.

The machine is shared and noisy: compare the ratios, not the absolute times.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from against import previous, split_against

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "churn"
STEPKIT = str(Path(sys.executable).parent / "stepkit")
REPEATS = 5
HANDOFF_RUNS = 3


def _catalog_bench() -> Any:
    spec = importlib.util.spec_from_file_location("catalog_bench", HERE / "catalog_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def planning(root: Path, *, steps: int = 10_000, nodes: int = 1_000) -> dict[str, Any]:
    """Plan a chain of ``nodes`` steps picked from a generated catalog of ``steps``."""
    from stepkit.catalog import StepCatalog
    from stepkit.plan.dagfile import PipelineDAG
    from stepkit.plan.planner import plan_pipeline
    from stepkit.project import Project

    bench = _catalog_bench()
    bench.generate(root, steps)
    names = [bench.step_name(i) for i in range(0, steps, steps // nodes)][:nodes]
    for index, name in enumerate(names):
        # a chain: each step takes "data", and its output "out" is also known as "data"
        spec = next(root.rglob(f"specs/{bench.snake(name)}_spec.py"))
        text = spec.read_text().replace("aliases=['output']", "aliases=['output', 'data']")
        if index == 0:
            start = text.index("    dependencies=[")
            end = text.index("    outputs=[")
            text = text[:start] + "    dependencies=[],\n" + text[end:]
        spec.write_text(text)
    project = Project.load(root)
    StepCatalog(project)  # build and save the index: planning reads a warm catalog
    dag = PipelineDAG("bench")
    for name in names:
        dag.add_node(name)
    for before, after in itertools.pairwise(names):
        dag.add_edge(before, after)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        catalog = StepCatalog(project)
        plan = plan_pipeline(catalog, dag)
        times.append(time.perf_counter() - started)
        assert len(plan.nodes) == nodes
    return {
        "plan_1000_nodes_10000_steps_s": round(statistics.median(times), 3),
        "plan_bound_s": 1.0,
        "plan_ratio_to_bound": round(statistics.median(times) / 1.0, 3),
    }


def _run(root: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            STEPKIT,
            "-p",
            str(root),
            "run",
            str(root / "pipelines/churn.yaml"),
            "-c",
            str(root / "pipelines/churn-config.yaml"),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr or done.stdout)
    return elapsed, json.loads(done.stdout)


def _bare_runs(root: Path, result: dict[str, Any], scratch: Path) -> float:
    """Each node's script (or builder) in a fresh python, in order, on the run's own inputs."""
    from stepkit.catalog import StepCatalog
    from stepkit.plan.config import load_pipeline_config
    from stepkit.plan.dagfile import load_dag
    from stepkit.plan.planner import plan_pipeline
    from stepkit.project import Project

    project = Project.load(root)
    plan = plan_pipeline(
        StepCatalog(project),
        load_dag(root / "pipelines/churn.yaml"),
        load_pipeline_config(root / "pipelines/churn-config.yaml"),
    )
    outputs = result["outputs"]
    total = 0.0
    for name, node in plan.nodes.items():
        inputs = {w.dependency: outputs[w.source][w.output] for w in node.inputs}
        outs = {o: str(scratch / name / o) for o in node.outputs}
        payload = {
            "how": node.how,
            "script": str(node.files["script"]) if node.files.get("script") else None,
            "config_file": str(node.files["config"]),
            "config_class": type(node.config).__name__,
            "config": node.config_values(),
            "builder_file": str(node.files["builder"]) if node.files.get("builder") else None,
            "builder_class": node.builder_class,
            "inputs": inputs,
            "outputs": outs,
            "environment": dict(node.environment),
            "arguments": dict(node.arguments),
            "node": name,
            "run_id": "bare",
        }
        if node.how == "script":
            code = (
                "import importlib.util,json,sys,pathlib;p=json.loads(sys.argv[1]);"
                "[pathlib.Path(o).mkdir(parents=True,exist_ok=True)"
                " for o in p['outputs'].values()];"
                "s=importlib.util.spec_from_file_location('m',p['script']);"
                "m=importlib.util.module_from_spec(s);s.loader.exec_module(m);"
                "m.main(p['inputs'],p['outputs'],p['environment'],p['arguments'])"
            )
            command = [sys.executable, "-c", code, json.dumps(payload)]
        else:
            code = (
                "import json,sys,pathlib;from stepkit.child import load_script;"
                "p=json.loads(sys.argv[1]);"
                "[pathlib.Path(o).mkdir(parents=True,exist_ok=True)"
                " for o in p['outputs'].values()];"
                "c=getattr(load_script(p['config_file'],'c'),p['config_class'])"
                ".model_validate(p['config']);"
                "b=getattr(load_script(p['builder_file'],'b'),p['builder_class'])(c);"
                "b.run({'inputs':p['inputs'],'outputs':p['outputs'],'node':p['node'],"
                "'run_id':p['run_id'],'environment':p['environment'],"
                "'arguments':p['arguments']})"
            )
            command = [sys.executable, "-c", code, json.dumps(payload)]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**_env(), **node.environment})
        total += time.perf_counter() - started
    return total


def _graph(root: Path) -> dict[str, tuple[str, ...]]:
    """Each node of the example and the nodes it depends on."""
    from stepkit.catalog import StepCatalog
    from stepkit.plan.config import load_pipeline_config
    from stepkit.plan.dagfile import load_dag
    from stepkit.plan.planner import plan_pipeline
    from stepkit.project import Project

    plan = plan_pipeline(
        StepCatalog(Project.load(root)),
        load_dag(root / "pipelines/churn.yaml"),
        load_pipeline_config(root / "pipelines/churn-config.yaml"),
    )
    return {name: node.depends_on for name, node in plan.nodes.items()}


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _show(root: Path, run_id: str) -> dict[str, Any]:
    done = subprocess.run(
        [STEPKIT, "-p", str(root), "runs", "show", run_id, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


def disk_hash_rate(folder: Path, *, mib: int = 128) -> float:
    """Bytes per second of reading a file back from the disk (evicted from the page cache)
    while hashing it: the speed "hashing a stage's new bytes" can have at worst."""
    import hashlib
    import os

    path = folder / "disk-rate.bin"
    with open(path, "wb") as handle:
        handle.write(os.urandom(mib * 1024 * 1024))
        handle.flush()
        os.fsync(handle.fileno())
    rates = []
    for _ in range(3):
        with open(path, "rb", buffering=0) as handle:
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            started = time.perf_counter()
            digest = hashlib.sha256()
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
            rates.append(mib * 1024 * 1024 / (time.perf_counter() - started))
    path.unlink()
    return statistics.median(rates)


def handoff_gaps(
    runs: list[dict[str, Any]], graph: dict[str, tuple[str, ...]], rate: float
) -> dict[str, Any]:
    """Per stage with upstreams: median gap and its parts over ``runs`` (``runs show``)."""
    per_stage: dict[str, dict[str, list[float]]] = {}
    for shown in runs:
        attempts = {a["stage"]: a for a in shown["attempts"] if a["status"] == "completed"}
        for name, upstreams in graph.items():
            if not upstreams or name not in attempts:
                continue
            mine = attempts[name]
            info = mine["outputs"]["_node"]
            last = max(upstreams, key=lambda u: attempts[u]["outputs"]["_node"]["step_finished_at"])
            up, up_info = attempts[last], attempts[last]["outputs"]["_node"]
            new_bytes = sum(
                ref["bytes"] for key, ref in up["outputs"].items() if key != "_node"
            )  # fmt: skip
            # the finalize starts in the runner once the child has reported and exited (a
            # commit before that one finalized in the child, right after the step)
            finalize_at = up_info.get("finalize_started_at", up_info["step_finished_at"])
            stored_at = finalize_at + up_info["finalize_seconds"]
            parts = {
                "gap_s": info["step_started_at"] - up_info["step_finished_at"],
                "upstream_report_and_exit_s": finalize_at - up_info["step_finished_at"],
                "upstream_finalize_s": up_info["finalize_seconds"],
                "upstream_cache_record_s": up["finished_at"] - stored_at,
                "runner_turn_s": mine["started_at"] - up["finished_at"],
                "process_start_s": info["step_started_at"]
                - mine["started_at"]
                - info["prepare_seconds"],
                "prepare_s": info["prepare_seconds"],
                "bound_s": 0.05 + new_bytes / rate,
            }
            slot = per_stage.setdefault(f"{last} -> {name}", {})
            for key, value in parts.items():
                slot.setdefault(key, []).append(value)
    gaps = {
        edge: {key: round(statistics.median(values), 3) for key, values in parts.items()}
        for edge, parts in per_stage.items()
    }
    for figures in gaps.values():
        figures["ok"] = figures["gap_s"] <= figures["bound_s"]
    return gaps


def example(root: Path) -> dict[str, Any]:
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".stepkit"))
    first, result = _run(root)  # the first run fills the cache
    cached = [_run(root)[0] for _ in range(REPEATS)]
    overhead: list[float] = []
    uncached: list[float] = []
    bare: list[float] = []
    for i in range(3):
        scratch = root.parent / f"bare-{i}"
        scratch.mkdir()
        bare_s = _bare_runs(root, result, scratch)
        stepkit_s, _ = _run(root, "--no-cache", "-j", "1")
        bare.append(bare_s)
        uncached.append(stepkit_s)
        overhead.append((stepkit_s - bare_s) / bare_s)
    parallel_runs = [_run(root, "--no-cache") for _ in range(HANDOFF_RUNS)]
    parallel = statistics.median(seconds for seconds, _ in parallel_runs)
    shown = [_show(root, result["run_id"]) for _, result in parallel_runs]
    graph = _graph(root)
    rate = disk_hash_rate(root.parent)
    gaps = handoff_gaps(shown, graph, rate)
    return {
        "example_first_run_s": round(first, 3),
        "example_cached_rerun_process_s": round(statistics.median(cached), 3),
        "cached_rerun_bound_s": 1.0,
        "example_uncached_sequential_s": round(statistics.median(uncached), 3),
        "example_same_scripts_bare_python_s": round(statistics.median(bare), 3),
        "stepkit_overhead_fraction": round(statistics.median(overhead), 3),
        "overhead_bound_fraction": 0.10,
        "example_uncached_parallel_s": round(parallel, 3),
        "handoff_disk_hash_mib_per_s": round(rate / 1024 / 1024, 1),
        "handoff_runs": HANDOFF_RUNS,
        "handoff_gaps": gaps,
        "handoff_gaps_within_bound": sum(1 for g in gaps.values() if g["ok"]),
        "handoff_gaps_total_s": round(sum(g["gap_s"] for g in gaps.values()), 3),
    }


def main() -> None:
    rev, argv = split_against(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        figures = {**example(Path(tmp) / "churn"), **planning(Path(tmp) / "big")}
    figures["repeats"] = REPEATS
    if rev is not None:
        figures["previous"] = previous(__file__, rev, argv)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
