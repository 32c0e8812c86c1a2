"""Catalog benchmark: N steps across 3 workspaces, in the classic layout (5 component
files a step) and in the interface layout (an ``interfaces/<stem>.step.yaml``, a script
and a config a step, the registry derived); prints one JSON object.

    python benchmarks/catalog_bench.py [N] [--keep DIR] [--base COMMIT | --base-src DIR]
                                       [--repeat R] [--layout classic|interface|both]

Measures the paths users take, each as a whole process: ``stepkit catalog list --json``,
``catalog list`` (the table), ``catalog show NAME``, ``catalog search QUERY`` and
``catalog which FILE``, cold (no catalog state), warm (nothing changed), after one
file changed and after one file added; ``catalog check`` warm (every file read whole: no
bound of the issue, but a command users run); and a Python program that opens
``StepCatalog`` and asks it things. Each
is run with this tree's code and with the code of ``--base`` (default: the commit before
the SQLite index), in the same run, with the same interpreter: medians of both, each
bound of the issue, and whether it is met. The interface layout (issue 14) is measured
beside it in the same run, with this tree's code only (the base reads no interface
files): ``catalog list --json`` and ``catalog show NAME``, cold, warm and after one
interface file changed. The machine is shared: expect noise.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BASE_COMMIT = "4a92b08"
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
BOUNDS = {  # seconds of a whole process, unless the name says otherwise
    "cold_s": 3.0,
    "warm_s": 0.5,
    "warm_show_which_s": 0.35,
    "one_changed_s": 0.55,
    "get_step_info_us": 20.0,
    "first_search_ms": 20.0,
    "peak_rss_cold_mb": 150.0,
    "peak_rss_warm_mb": 100.0,
}
COMMANDS = ("list_json", "list_table", "show", "search", "which")
INTERFACE_COMMANDS = ("list_json", "show")
INTERFACE_BOUNDS = {"cold_s": 3.5, "warm_s": 0.5, "one_changed_s": 0.6}


def steps_folder(i: int) -> str:
    """Where step ``i`` lives: 80 % in the shared workspace, 10 % in each of two others."""
    return "dev/alice/steps" if i % 10 == 1 else "dev/bob/steps" if i % 10 == 2 else "steps"


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


def write_interface_step(steps: Path, name: str, i: int) -> None:
    """One interface-layout step: its ``.step.yaml`` (every fifth with job-type variants),
    its script and its config."""
    s = snake(name)
    kind = "Training" if "Training" in name else "Processing"
    variants = "variants:\n  training:\n    spec:\n      dependencies:\n        data:\n"
    variants += "          semantic_keywords: [training, data]\n  calibration:\n"
    (steps / "interfaces" / f"{s}.step.yaml").write_text(
        f"step_type: {name}\nnode_type: internal\nregistry:\n"
        f"  sagemaker_step_type: {kind}\n  description: {name} of the benchmark\n"
        f"contract:\n  entry_point: {s}.py\n  inputs:\n    data:\n"
        "      path: /opt/ml/processing/input/data\n      required: true\n"
        "  outputs:\n    out:\n      path: /opt/ml/processing/output\n"
        "  arguments:\n    job_type: the job type\n"
        "  job_arguments:\n  - flag: --job_type\n    source: job_type\n"
        "  env_vars:\n    required: [LABEL_FIELD]\n    optional:\n      RATIO: '0.7'\n"
        "  framework_requirements:\n    pandas: '>=1.2'\n"
        f"  description: {name} contract\n"
        "spec:\n  dependencies:\n    data:\n      type: processing_output\n"
        "      required: true\n      compatible_sources: [DataLoading]\n"
        "      semantic_keywords: [data]\n      data_type: S3Uri\n"
        "  outputs:\n    out:\n      type: processing_output\n"
        "      property_path: properties.ProcessingOutputConfig.Outputs['out']\n"
        "      semantic_keywords: [processed]\n      aliases: [output]\n"
        + (variants if i % 5 == 0 else "")
        + "compute:\n  instance_type: ml.m5.xlarge\n  volume_size: 30\n"
        "patterns:\n  output_path: '{pipeline_s3_loc}/{step}/{output}'\n"
    )
    (steps / "scripts" / f"{s}.py").write_text(
        f'"""Script of {name}."""\n\nimport json\n\n\ndef main(input_paths, output_paths, '
        f"environ_vars, job_args):\n    return {{'step': {i}}}\n"
    )
    entry = "training_entry_point" if kind == "Training" else "processing_entry_point"
    (steps / "configs" / f"config_{s}_step.py").write_text(
        f'"""Config of {name}."""\n\nfrom stepkit.components import StepConfig\n\n\n'
        f"class {name}Config(StepConfig):\n"
        f'    {entry}: str = "{s}.py"\n    label_field: str = "y"\n    ratio: float = 0.7\n'
    )


def generate_interfaces(root: Path, n: int) -> Path:
    """The interface layout of :func:`generate`'s project: same steps, same workspaces."""
    workspaces = [("alice", "dev/alice/steps"), ("bob", "dev/bob/steps"), ("shared", "steps")]
    toml = ['[project]\nname = "bench-interfaces"\n']
    for ws, rel in workspaces:
        for folder in ("interfaces", "scripts", "configs"):
            (root / rel / folder).mkdir(parents=True, exist_ok=True)
        toml.append(f'[[workspaces]]\nid = "{ws}"\npath = "{rel}"\n')
    (root / "stepkit.toml").write_text("\n".join(toml))
    for i in range(n):
        write_interface_step(root / steps_folder(i), step_name(i), i)
    return root


def measure_interfaces(src: Path, root: Path, repeat: int) -> dict[str, Any]:
    """``list --json`` and ``show NAME`` cold, warm and after one interface file changed
    (an edit to the interface of a step: its description)."""
    picked = (7, 4321, 9000)
    out: dict[str, Any] = {}
    for kind in INTERFACE_COMMANDS:
        runs: dict[str, list[float]] = {"cold": [], "warm": [], "one_changed": []}
        for i in range(repeat):
            number = picked[i % len(picked)]
            name = step_name(number)
            args = ["list", "--json"] if kind == "list_json" else ["show", name]
            shutil.rmtree(root / ".stepkit", ignore_errors=True)
            for state in ("cold", "warm"):
                runs[state].append(run_process(src, root, args)[0])
            path = root / steps_folder(number) / "interfaces" / f"{snake(name)}.step.yaml"
            text = path.read_text()
            path.write_text(text.replace("of the benchmark", f"of the benchmark ({kind} {i})"))
            runs["one_changed"].append(run_process(src, root, args)[0])
        for state, values in runs.items():
            out[f"{kind}_{state}_s"] = statistics.median(values)
    worst = {
        "cold_s": max(out[f"{k}_cold_s"] for k in INTERFACE_COMMANDS),
        "warm_s": max(out[f"{k}_warm_s"] for k in INTERFACE_COMMANDS),
        "one_changed_s": max(out[f"{k}_one_changed_s"] for k in INTERFACE_COMMANDS),
    }
    out["bounds"] = {
        k: {"worst": round(v, 4), "bound": INTERFACE_BOUNDS[k], "met": v <= INTERFACE_BOUNDS[k]}
        for k, v in worst.items()
    }
    return out


def _command(kind: str, root: Path, name: str) -> list[str]:
    spec = root / "steps" / "specs" / f"{snake(name)}_spec.py"
    return {
        "list_json": ["list", "--json"],
        "list_table": ["list"],
        "show": ["show", name],
        "search": ["search", "gen0432 transfrm"],
        "which": ["which", str(spec)],
    }[kind]


def _env(src: Path) -> dict[str, str]:
    """The environment of a measured process: the code in ``src``, bytecode cached as a
    user's would be (whatever this shell says)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(src)}


def run_process(src: Path, root: Path, args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one whole ``stepkit -p ROOT catalog ARGS`` process
    running the code in ``src``."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = [sys.executable, "-m", "stepkit", "-p", str(root), "catalog", *args]
    out = subprocess.run(
        [sys.executable, "-c", code, *command],
        check=True,
        capture_output=True,
        text=True,
        env=_env(src),
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def measure_processes(src: Path, root: Path, repeat: int) -> dict[str, Any]:
    """Every command cold, warm, after one file changed (an edit to the spec of the step
    asked about, which keeps what the file declares) and after one file added (the
    builder of a new step: its step is resolved again)."""
    names = [step_name(i) for i in (7, 4321, 9000)]
    out: dict[str, Any] = {}
    for kind in COMMANDS:
        runs: dict[str, list[float]] = {"cold": [], "warm": [], "one_changed": [], "one_added": []}
        rss: dict[str, list[float]] = {k: [] for k in runs}
        for i in range(repeat):
            name = names[i % len(names)]
            args = _command(kind, root, name)
            shutil.rmtree(root / ".stepkit", ignore_errors=True)
            for state in ("cold", "warm"):
                seconds, peak = run_process(src, root, args)
                runs[state].append(seconds)
                rss[state].append(peak)
            with (root / "steps" / "specs" / f"{snake(name)}_spec.py").open("a") as handle:
                handle.write(f"# change {kind} {i}\n")
            seconds, peak = run_process(src, root, args)
            runs["one_changed"].append(seconds)
            rss["one_changed"].append(peak)
            added = root / "steps" / "builders" / f"builder_extra_{kind}_{i}_step.py"
            added.write_text(
                f"class Extra{kind.title().replace('_', '')}{i}StepBuilder:\n    pass\n"
            )
            seconds, peak = run_process(src, root, args)
            runs["one_added"].append(seconds)
            rss["one_added"].append(peak)
            added.unlink()
        for state, values in runs.items():
            out[f"{kind}_{state}_s"] = statistics.median(values)
            out[f"{kind}_{state}_peak_rss_mb"] = max(rss[state])
    return out


def measure_check(src: Path, root: Path, repeat: int) -> dict[str, Any]:
    """``catalog check`` with the index built and its scripts read once (warm)."""
    run_process(src, root, ["list", "--json"])
    run_process(src, root, ["check"])
    runs = [run_process(src, root, ["check"]) for _ in range(repeat)]
    return {
        "check_warm_s": statistics.median(s for s, _ in runs),
        "check_warm_peak_rss_mb": max(rss for _, rss in runs),
    }


IN_PROCESS = """
import json, resource, statistics, sys, time
from stepkit.catalog import StepCatalog
from stepkit.project import Project

started = time.perf_counter()
project = Project.load(sys.argv[1])
catalog = StepCatalog(project)
open_s = time.perf_counter() - started
started = time.perf_counter()
names = catalog.list_available_steps()
first_query_s = time.perf_counter() - started
sample = names[:: max(1, len(names) // 2000)]
started = time.perf_counter()
for name in sample:
    catalog.get_step_info(name)
first_us = (time.perf_counter() - started) / len(sample) * 1e6
rounds = []
for _ in range(5):
    started = time.perf_counter()
    for name in sample:
        catalog.get_step_info(name)
    rounds.append((time.perf_counter() - started) / len(sample) * 1e6)
started = time.perf_counter()
hits = catalog.search_steps("gen0432 transfrm")
first_search_ms = (time.perf_counter() - started) * 1e3
started = time.perf_counter()
catalog.search_steps("xgb train")
second_search_ms = (time.perf_counter() - started) * 1e3
print(json.dumps({
    "open_s": open_s,
    "open_and_first_query_s": open_s + first_query_s,
    "get_step_info_first_call_us": first_us,
    "get_step_info_us": statistics.median(rounds),
    "first_search_ms": first_search_ms,
    "second_search_ms": second_search_ms,
    "search_hits": len(hits),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def measure_in_process(src: Path, root: Path, repeat: int) -> dict[str, Any]:
    """A Python program that opens ``StepCatalog``, lists, looks up and searches: warm
    (the index there) and cold (none)."""
    out: dict[str, Any] = {}
    for state in ("cold", "warm"):
        runs = []
        for _ in range(repeat):
            if state == "cold":
                shutil.rmtree(root / ".stepkit", ignore_errors=True)
            done = subprocess.run(
                [sys.executable, "-c", IN_PROCESS, str(root)],
                check=True,
                capture_output=True,
                text=True,
                env=_env(src),
            )
            runs.append(json.loads(done.stdout))
        for key in runs[0]:
            values = [r[key] for r in runs]
            out[f"in_process_{state}_{key}"] = (
                max(values) if key == "peak_rss_mb" else statistics.median(values)
            )
    return out


def _bounds(r: dict[str, Any]) -> dict[str, Any]:
    """Each bound of the issue against the worst of the paths it covers: met or not."""
    cold = [r[f"{k}_cold_s"] for k in COMMANDS] + [r["in_process_cold_open_and_first_query_s"]]
    warm = [r[f"{k}_warm_s"] for k in ("list_json", "list_table", "search")]
    warm.append(r["in_process_warm_open_and_first_query_s"])
    changed = [r[f"{k}_{s}_s"] for k in COMMANDS for s in ("one_changed", "one_added")]
    rss_cold = [r[f"{k}_cold_peak_rss_mb"] for k in COMMANDS] + [r["in_process_cold_peak_rss_mb"]]
    rss_warm = [
        r[f"{k}_{s}_peak_rss_mb"] for k in COMMANDS for s in ("warm", "one_changed", "one_added")
    ]
    rss_warm.append(r["in_process_warm_peak_rss_mb"])
    worst = {
        "cold_s": max(cold),
        "warm_s": max(warm),
        "warm_show_which_s": max(r["show_warm_s"], r["which_warm_s"]),
        "one_changed_s": max(changed),
        "get_step_info_us": r["in_process_warm_get_step_info_us"],
        "first_search_ms": r["in_process_warm_first_search_ms"],
        "peak_rss_cold_mb": max(rss_cold),
        "peak_rss_warm_mb": max(rss_warm),
    }
    return {
        k: {"worst": round(v, 4), "bound": BOUNDS[k], "met": v <= BOUNDS[k]}
        for k, v in worst.items()
    }


def base_source(commit: str) -> Path:
    """The ``src`` folder of ``commit``, extracted into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="stepkit-base-"))
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def main() -> None:
    args = sys.argv[1:]
    n = int(args[0]) if args and args[0].isdigit() else 10_000
    keep = Path(args[args.index("--keep") + 1]) if "--keep" in args else None
    commit = args[args.index("--base") + 1] if "--base" in args else BASE_COMMIT
    repeat = int(args[args.index("--repeat") + 1]) if "--repeat" in args else 3
    layout = args[args.index("--layout") + 1] if "--layout" in args else "both"
    root = keep or Path(tempfile.mkdtemp(prefix="stepkit-catalog-bench-"))
    classic, interfaces = root / "classic", root / "interfaces"
    given = Path(args[args.index("--base-src") + 1]) if "--base-src" in args else None
    base = given or base_source(commit) if layout != "interface" else None
    current = Path(__file__).resolve().parent.parent / "src"
    try:
        result: dict[str, Any] = {"steps": n, "cpus": os.cpu_count()}
        if layout in ("classic", "both"):
            assert base is not None
            if not (classic / "stepkit.toml").exists():
                generate(classic, n)
            result["files"] = sum(1 for _ in classic.rglob("*.py"))
            for label, src in (("new", current), (f"base_{commit}", base)):
                measured = measure_processes(src, classic, repeat)
                measured.update(measure_in_process(src, classic, repeat))
                measured.update(measure_check(src, classic, repeat))
                measured["bounds"] = _bounds(measured)
                measured["load_average"] = os.getloadavg()
                result[label] = measured
        if layout in ("interface", "both"):
            if not (interfaces / "stepkit.toml").exists():
                generate_interfaces(interfaces, n)
            measured = measure_interfaces(current, interfaces, repeat)
            measured["files"] = sum(1 for p in interfaces.rglob("*") if p.is_file())
            measured["load_average"] = os.getloadavg()
            result["interface_layout_new"] = measured
        print(json.dumps(result, indent=2, sort_keys=True))
    finally:
        if given is None and base is not None:
            shutil.rmtree(base.parent, ignore_errors=True)
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
