"""Catalog benchmark: N steps × 5 components across 3 workspaces; prints one JSON object.

    python benchmarks/catalog_bench.py [N] [--keep DIR]

Measures whole ``stepkit catalog list --json`` processes (cold: no state folder at all;
warm: nothing changed; one file changed), in-process ``get_step_info`` (first and repeated
calls) and ``search_steps``, peak RSS, and the latency of ``catalog watch``. Medians, with
each bound of the issue and the ratio to it. The machine is shared: expect noise.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STEPKIT = [str(Path(sys.executable).parent / "stepkit")]
WORDS = [
    "Tabular",
    "XGBoost",
    "PyTorch",
    "LightGBM",
    "Feature",
    "Model",
    "Data",
    "Risk",
    "Batch",
    "Label",
    "Payload",
    "Currency",
    "Dummy",
    "Stratified",
    "Missing",
    "Temporal",
]
KINDS = ["Preprocessing", "Training", "Evaluation", "Calibration", "Loading", "Packaging"]
BOUNDS = {
    "cold_s": 2.5,
    "warm_s": 0.4,
    "one_changed_s": 0.45,
    "get_step_info_first_call_us": 5.0,  # the cached repeat is a dict hit
    "search_ms": 20.0,
    "in_process_peak_rss_mb": 100.0,  # a process that opens the catalog and queries it
    "watch_latency_s": 0.1,
}


def step_name(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]}{KINDS[(i // len(WORDS)) % len(KINDS)]}{i}"


def snake(name: str) -> str:
    from stepkit.names import pascal_to_snake

    return pascal_to_snake(name)


def write_step(steps: Path, name: str, i: int) -> None:
    s = snake(name)
    kind = "Training" if "Training" in name else "Processing"
    (steps / "scripts" / f"{s}.py").write_text(
        f'"""Script of {name}."""\n\nimport json\n\n\ndef main(input_paths, output_paths, '
        f"environ_vars, job_args):\n    return {{'step': {i}}}\n\n\n"
        'if __name__ == "__main__":\n    main({}, {}, {}, None)\n'
    )
    (steps / "contracts" / f"{s}_contract.py").write_text(
        f'"""Contract of {name}."""\n\nfrom stepkit.components import ScriptContract\n\n'
        f"{s.upper()}_CONTRACT = ScriptContract(\n"
        f'    entry_point="{s}.py",\n'
        "    expected_input_paths={'data': '/opt/ml/processing/input/data'},\n"
        "    expected_output_paths={'out': '/opt/ml/processing/output'},\n"
        "    required_env_vars=['LABEL_FIELD'],\n"
        "    optional_env_vars={'RATIO': '0.7'},\n"
        f'    description="{name} contract",\n)\n'
    )
    helper = "get_spec_step_type"
    (steps / "specs" / f"{s}_spec.py").write_text(
        f'"""Spec of {name}."""\n\nfrom stepkit.components import DependencySpec, '
        "DependencyType, NodeType, OutputSpec, StepSpecification\n"
        f"from stepkit.registry.step_names import {helper}\n\n\n"
        f"def _get_contract():\n    from ..contracts.{s}_contract import {s.upper()}_CONTRACT\n\n"
        f"    return {s.upper()}_CONTRACT\n\n\n"
        f"{s.upper()}_SPEC = StepSpecification(\n"
        f'    step_type={helper}("{name}"),\n'
        "    node_type=NodeType.INTERNAL,\n    script_contract=_get_contract(),\n"
        '    dependencies=[\n        DependencySpec(\n            logical_name="data",\n'
        "            dependency_type=DependencyType.PROCESSING_OUTPUT,\n"
        "            compatible_sources=['DataLoading'],\n"
        "            semantic_keywords=['data'],\n        ),\n    ],\n"
        '    outputs=[\n        OutputSpec(\n            logical_name="out",\n'
        "            output_type=DependencyType.PROCESSING_OUTPUT,\n"
        "            aliases=['output'],\n        ),\n    ],\n)\n"
    )
    if i % 5 == 0:
        variant = (steps / "specs" / f"{s}_spec.py").read_text()
        variant = variant.replace(
            f'{helper}("{name}")', f'get_spec_step_type_with_job_type("{name}", "training")'
        ).replace(f"import {helper}", "import get_spec_step_type_with_job_type")
        variant = variant.replace(f"{s.upper()}_SPEC =", f"{s.upper()}_TRAINING_SPEC =")
        (steps / "specs" / f"{s}_training_spec.py").write_text(variant)
    entry = "training_entry_point" if kind == "Training" else "processing_entry_point"
    (steps / "configs" / f"config_{s}_step.py").write_text(
        f'"""Config of {name}."""\n\nfrom stepkit.components import StepConfig\n\n\n'
        f"class {name}Config(StepConfig):\n"
        f'    {entry}: str = "{s}.py"\n    label_field: str = "y"\n    ratio: float = 0.7\n'
    )
    (steps / "builders" / f"builder_{s}_step.py").write_text(
        f'"""Builder of {name}."""\n\nfrom stepkit.components import StepBuilder\n\n\n'
        f"class {name}StepBuilder(StepBuilder):\n    pass\n"
    )


def generate(root: Path, n: int) -> Path:
    """A project of ``n`` steps: 80 % in the shared workspace, 10 % in each of two others."""
    workspaces = [("alice", "dev/alice/steps"), ("bob", "dev/bob/steps"), ("shared", "steps")]
    toml = ['[project]\nname = "bench"\n']
    for ws, rel in workspaces:
        steps = root / rel
        for folder in ("scripts", "contracts", "specs", "configs", "builders"):
            (steps / folder).mkdir(parents=True, exist_ok=True)
        toml.append(f'[[workspaces]]\nid = "{ws}"\npath = "{rel}"\n')
    (root / "stepkit.toml").write_text("\n".join(toml))
    registries: dict[str, list[str]] = {ws: [] for ws, _ in workspaces}
    for i in range(n):
        ws, rel = workspaces[0 if i % 10 == 1 else 1 if i % 10 == 2 else 2]
        name = step_name(i)
        write_step(root / rel, name, i)
        kind = "Training" if "Training" in name else "Processing"
        registries[ws].append(
            f'[steps.{name}]\nconfig_class = "{name}Config"\n'
            f'builder_step_name = "{name}StepBuilder"\nspec_type = "{name}"\n'
            f'sagemaker_step_type = "{kind}"\ndescription = "{name} of the benchmark"\n'
        )
    for ws, rel in workspaces:
        (root / rel / "registry.toml").write_text("\n".join(registries[ws]))
    return root


def run_list(root: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one whole ``catalog list --json`` process."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *STEPKIT, "-p", str(root), "catalog", "list", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def measure_floor(root: Path, repeat: int = 3) -> dict[str, Any]:
    """What the machine needs, measured now, for what a cold start must do at least: read
    and ``ast.parse`` every file it parses (all but scripts, which are parsed on demand)
    on one core, and ``stat`` every file. Noise hits these as it hits the runs: each is
    the median of ``repeat`` passes over a quarter of the files, times four."""
    import ast

    files = sorted(p for p in root.rglob("*.py") if "scripts" not in p.parts)
    every = sorted(root.rglob("*.py"))
    parse, stat = [], []
    for i in range(repeat):
        started = time.perf_counter()
        for path in files[i % 4 :: 4]:
            ast.parse(path.read_bytes())
        parse.append((time.perf_counter() - started) * 4)
        started = time.perf_counter()
        for path in every[i % 4 :: 4]:
            path.stat()
        stat.append((time.perf_counter() - started) * 4)
    return {
        "floor_parse_one_core_s": statistics.median(parse),
        "floor_parse_runs_s": parse,
        "floor_stat_s": statistics.median(stat),
    }


def measure_processes(root: Path, repeat: int) -> dict[str, Any]:
    state = root / ".stepkit"
    runs: dict[str, list[float]] = {
        "cold_no_state": [],
        "cold": [],
        "warm": [],
        "one_changed": [],
        "one_changed_identity": [],
    }
    rss: dict[str, list[float]] = {kind: [] for kind in runs}

    def record(kind: str) -> None:
        seconds, peak = run_list(root)
        runs[kind].append(seconds)
        rss[kind].append(peak)

    for _ in range(repeat):
        shutil.rmtree(state, ignore_errors=True)  # no index, no registry cache either
        record("cold_no_state")
    for _ in range(repeat):
        shutil.rmtree(state / "catalog", ignore_errors=True)  # no catalog index
        record("cold")
    for _ in range(repeat):
        record("warm")
    specs = sorted((root / "steps" / "specs").iterdir())
    for i in range(repeat):
        with specs[i].open("a") as handle:  # an edit that keeps what the file declares
            handle.write(f"# change {i}\n")
        record("one_changed")
    for i in range(repeat):
        config = sorted((root / "steps" / "configs").iterdir())[i]
        text = config.read_text()  # a new entry point: what resolution reads changes
        config.write_text(
            text.replace('label_field: str = "y"', f'label_field: str = "y{i}"').replace(
                '.py"\n', f'_v{i}.py"\n', 1
            )
        )
        record("one_changed_identity")
    out: dict[str, Any] = {f"{k}_s": statistics.median(v) for k, v in runs.items()}
    # peak RSS of whole CLI processes (the largest one: a cold start's, its parsing
    # workers included): reported beside the bound, which is for a process using the catalog
    out["cli_peak_rss_mb"] = {kind: max(values) for kind, values in rss.items()}
    out["runs_s"] = runs
    return out


def measure_in_process(root: Path) -> dict[str, Any]:
    from stepkit.catalog import StepCatalog

    started = time.perf_counter()
    catalog = StepCatalog.open(root)
    open_s = time.perf_counter() - started
    names = catalog.step_names()
    sample = names[:: max(1, len(names) // 2000)]
    started = time.perf_counter()
    for name in sample:
        catalog.get_step_info(name)
    first_us = (time.perf_counter() - started) / len(sample) * 1e6
    others = names[1 :: max(1, len(names) // 2000)]  # not looked up yet
    started = time.perf_counter()
    for name in others:
        info = catalog.get_step_info(name)
        info.definition  # noqa: B018  (made from the index digest when first read)
        info.components  # noqa: B018
    with_definition_us = (time.perf_counter() - started) / len(others) * 1e6
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for name in sample:
            catalog.get_step_info(name)
        rounds.append((time.perf_counter() - started) / len(sample) * 1e6)
    node = f"{names[0]}"
    started = time.perf_counter()
    found = catalog.find_step_by_component(catalog.get_step_info(node).components["spec"].path)
    which_us = (time.perf_counter() - started) * 1e6
    queries = [
        "xgb train",
        "tabular preprocessing",
        "lgbm eval",
        "PyTorchTraining12",
        "modle calib",
    ]
    catalog.search_steps("warm up")
    search = []
    for query in queries:
        started = time.perf_counter()
        catalog.search_steps(query)
        search.append((time.perf_counter() - started) * 1e3)
    import psutil

    return {
        "open_catalog_in_process_s": open_s,
        "get_step_info_us": statistics.median(rounds),
        "get_step_info_first_call_us": first_us,
        "get_step_info_first_call_and_definition_us": with_definition_us,
        "find_step_by_component_first_call_us": which_us,
        "find_step_by_component_ok": found == node,
        "search_ms": statistics.median(search),
        "search_runs_ms": search,
        "in_process_rss_mb": psutil.Process().memory_info().rss / 2**20,
        # nothing else has run in this process: its peak is the catalog's (and psutil's)
        "in_process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_watch(root: Path, repeat: int) -> dict[str, Any]:
    proc = subprocess.Popen(
        [*STEPKIT, "-p", str(root), "catalog", "watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        proc.stderr.readline()  # "watching …": the index is loaded
        time.sleep(0.5)  # let the watcher register its folders
        target = root / "steps" / "configs"
        files = sorted(target.iterdir())[:repeat]
        latencies: list[float] = []
        in_memory: list[float] = []
        saving: list[float] = []
        for i, path in enumerate(files):
            started = time.perf_counter()
            with path.open("a") as handle:
                handle.write(f"    extra_{i}: int = {i}\n")
            line = proc.stdout.readline()  # printed once the index file is written
            latencies.append(time.perf_counter() - started)
            update = json.loads(line)
            in_memory.append(update["seconds_in_memory"])
            saving.append(update["seconds_saved"])
            time.sleep(0.2)
        return {
            "watch_latency_s": statistics.median(latencies),
            "watch_runs_s": latencies,
            "watch_apply_in_memory_s": statistics.median(in_memory),
            "watch_apply_and_save_s": statistics.median(saving),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    args = sys.argv[1:]
    n = int(args[0]) if args and args[0].isdigit() else 10_000
    keep = Path(args[args.index("--keep") + 1]) if "--keep" in args else None
    root = keep or Path(tempfile.mkdtemp(prefix="stepkit-catalog-bench-"))
    try:
        if not (root / "stepkit.toml").exists():
            generate(root, n)
        files = sum(1 for _ in root.rglob("*.py"))
        result: dict[str, Any] = {"steps": n, "files": files, "cpus": os.cpu_count()}
        result.update(measure_floor(root))
        result.update(measure_processes(root, repeat=5))
        cores = min(2, os.cpu_count() or 1)
        result["cold_over_parse_on_every_core"] = round(
            result["cold_s"] / (result["floor_parse_one_core_s"] / cores), 3
        )
        result["load_average"] = os.getloadavg()
        result.update(measure_in_process(root))
        result.update(measure_watch(root, repeat=5))
        result["ratio_to_bound"] = {k: round(result[k] / b, 3) for k, b in BOUNDS.items()}
        result["max_rss_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result, indent=2, sort_keys=True))
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
