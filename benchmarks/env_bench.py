"""Per-step environment benchmark: prints one JSON object with medians, each bound, and
the same figures for a previous commit, measured in the same run.

1. the first build of an environment of ten small pure-Python packages, beside
   ``python -m venv`` + ``pip install`` of the same requirements in the same run;
2. building it again into a fresh folder with uv's cache warm (bound: 5 s);
3. finding the built one again: normalizing the requirements, hashing them and looking
   the environment up, as a run does before it starts;
4. what reusing a built environment adds to a stage (bound: 50 ms): a one-step run, and a
   test of the same script, in per-step mode minus the same in shared mode (where the
   script imports six from stepkit's own environment).

``--against REV`` measures the same on an earlier commit in the same run
(``benchmarks/against.py``); what that commit cannot do (no per-step mode before it
existed) is reported as null.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from against import previous, split_against

#: Ten small pure-Python distributions (each a single wheel, no dependencies of note).
REQUIREMENTS = {
    "six": "",
    "attrs": "",
    "idna": "",
    "toolz": "",
    "itsdangerous": "",
    "iniconfig": "",
    "pluggy": "",
    "mdurl": "",
    "zipp": "",
    "sortedcontainers": "",
}
STAGE_BOUND_MS = 50.0
WARM_BOUND_S = 5.0


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_first_build(root: Path) -> dict[str, float]:
    """uv's cache may already hold these wheels (as pip's may): "first" is the store's."""
    from stepkit.envs import EnvSpec, EnvStore, ensure_environment

    spec = EnvSpec.from_requirements(REQUIREMENTS)
    started = time.perf_counter()
    ensure_environment(spec, store=EnvStore(root / "first"))
    uv_seconds = time.perf_counter() - started

    venv = root / "pip-venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *spec.requirements],
        check=True,
    )
    pip_seconds = time.perf_counter() - started
    return {
        "stepkit_first_build_s": round(uv_seconds, 3),
        "pip_venv_install_s": round(pip_seconds, 3),
        "ratio_to_pip": round(uv_seconds / pip_seconds, 3),
    }


def bench_warm_build(root: Path, n: int = 5) -> dict[str, float]:
    from stepkit.envs import EnvSpec, EnvStore, ensure_environment

    spec = EnvSpec.from_requirements(REQUIREMENTS)
    samples = []
    for index in range(n):
        store = EnvStore(root / f"warm-{index}")
        started = time.perf_counter()
        ensure_environment(spec, store=store)
        samples.append(time.perf_counter() - started)
    median = _median(samples)
    return {
        "median_s": round(median, 3),
        "bound_s": WARM_BOUND_S,
        "ratio_to_bound": round(median / WARM_BOUND_S, 3),
    }


def bench_lookup(root: Path, n: int = 500) -> dict[str, float]:
    from stepkit.envs import EnvSpec, EnvStore, ensure_environment

    store = EnvStore(root / "first")
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        spec = EnvSpec.from_requirements(REQUIREMENTS)
        environment = ensure_environment(spec, store=store)
        samples.append(time.perf_counter() - started)
        assert environment.python.exists()
    return {"median_ms": round(_median(samples) * 1000, 4)}


# -- what a built environment adds to a stage ---------------------------------------------

SCRIPT = """
    import six
    from pathlib import Path

    def main(input_paths, output_paths, environ_vars, job_args):
        Path(output_paths["out"], "six.txt").write_text(six.__version__)
    """


def write_project(root: Path, envs: Path) -> Path:
    """One Processing step whose contract pins six (stepkit's own environment has a six)."""
    files = {
        "stepkit.toml": f"""
            [project]
            name = "env-bench"

            [[workspaces]]
            id = "core"
            path = "steps"

            [run]
            environments_dir = "{envs}"
        """,
        "steps/step_names.py": """
            STEP_NAMES = {"Pinned": {"config_class": "PinnedConfig",
                "builder_step_name": "PinnedStepBuilder", "spec_type": "Pinned",
                "sagemaker_step_type": "Processing", "description": "pins six"}}
        """,
        "steps/scripts/pinned.py": SCRIPT,
        "steps/contracts/pinned_contract.py": """
            from stepkit.components import ScriptContract

            PINNED_CONTRACT = ScriptContract(
                entry_point="pinned.py",
                expected_output_paths={"out": "/opt/ml/processing/output/out"},
                framework_requirements={"six": "==1.10.0"},
            )
        """,
        "steps/specs/pinned_spec.py": """
            from stepkit.components import DependencyType, NodeType, OutputSpec, StepSpecification

            PINNED_SPEC = StepSpecification(
                step_type="Pinned",
                node_type=NodeType.SOURCE,
                dependencies=[],
                outputs=[OutputSpec(logical_name="out",
                                    output_type=DependencyType.PROCESSING_OUTPUT)],
            )
        """,
        "steps/configs/config_pinned_step.py": """
            from stepkit.components import StepConfig


            class PinnedConfig(StepConfig):
                pass
        """,
        "steps/builders/builder_pinned_step.py": """
            from stepkit.components import StepBuilder


            class PinnedStepBuilder(StepBuilder):
                pass
        """,
        "dag.yaml": "name: bench\nnodes: [Pinned]\nedges: []\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def _children_cpu() -> float:
    """User + system seconds of every child process waited for so far (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_stage(root: Path, n: int = 9) -> dict[str, Any]:
    """A one-step run (--no-cache) and a test of its script, shared and per-step mode
    interleaved; per-step is null where this commit has no such mode."""
    import inspect

    from stepkit.pipeline.settings import RunSettings
    from stepkit.plan.execute import RunOptions, run_dag
    from stepkit.project import Project
    from stepkit.testing import RuntimeTester

    project = Project.load(write_project(root / "project", root / "stage-envs"))
    dag = project.root / "dag.yaml"
    per_step = "env_mode" in inspect.signature(RunOptions).parameters
    modes = ["shared", "per-step"] if per_step else ["shared"]

    def one_run(mode: str) -> tuple[float, float]:
        options = (
            RunOptions(no_cache=True, env_mode=mode) if per_step else RunOptions(no_cache=True)
        )
        started, cpu = time.perf_counter(), _children_cpu()
        result = run_dag(project, dag, options=options, settings=RunSettings())
        seconds = time.perf_counter() - started
        assert result.ok, result
        return seconds, _children_cpu() - cpu

    def one_test(mode: str) -> tuple[float, float]:
        tester = RuntimeTester(project, env_mode=mode) if per_step else RuntimeTester(project)
        started, cpu = time.perf_counter(), _children_cpu()
        outcome = tester.test_script("Pinned")
        seconds = time.perf_counter() - started
        assert outcome.ok, outcome.reason
        return seconds, _children_cpu() - cpu

    for mode in modes:  # warm up: the environment is built here, the catalog indexed
        one_run(mode)
        one_test(mode)
    runs: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    tests: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for _ in range(n):
        for mode in modes:
            runs[mode].append(one_run(mode))
            tests[mode].append(one_test(mode))

    def figures(samples: dict[str, list[tuple[float, float]]]) -> dict[str, Any]:
        """Wall time, and the CPU time of the child processes (steady on a busy machine)."""
        shared = _median([wall for wall, _ in samples["shared"]]) * 1000
        shared_cpu = _median([cpu for _, cpu in samples["shared"]]) * 1000
        out: dict[str, Any] = {
            "shared_median_ms": round(shared, 2),
            "shared_children_cpu_ms": round(shared_cpu, 2),
        }
        if per_step:
            own = _median([wall for wall, _ in samples["per-step"]]) * 1000
            own_cpu = _median([cpu for _, cpu in samples["per-step"]]) * 1000
            out |= {
                "per_step_median_ms": round(own, 2),
                "per_step_children_cpu_ms": round(own_cpu, 2),
                "added_ms": round(own - shared, 2),
                "added_children_cpu_ms": round(own_cpu - shared_cpu, 2),
                "bound_ms": STAGE_BOUND_MS,
                "ratio_to_bound": round((own - shared) / STAGE_BOUND_MS, 3),
            }
        else:
            out |= {"per_step_median_ms": None, "added_ms": None}
        return out

    return {"run_one_step": figures(runs), "test_script": figures(tests)}


def measure() -> dict[str, Any]:
    from stepkit.envs.uvtool import pip_settings, uv_binary
    from stepkit.errors import UvNotInstalledError

    try:
        uv_binary()
    except UvNotInstalledError as exc:  # `make bench` installs the examples extra only
        return {"skipped": str(exc)}
    # pip's index settings are read once per process (``pip config list``): reported apart,
    # since a `stepkit env build` pays it once however many environments it builds.
    started = time.perf_counter()
    pip_settings()
    pip_config_s = round(time.perf_counter() - started, 3)
    with tempfile.TemporaryDirectory(prefix="stepkit-env-bench-") as tmp:
        root = Path(tmp)
        return {
            "pip_config_read_s": pip_config_s,
            "first_build": bench_first_build(root),
            "warm_build": bench_warm_build(root),
            "lookup": bench_lookup(root),
            "stage": bench_stage(root),
        }


def main() -> None:
    rev, argv = split_against(sys.argv[1:])
    if argv:
        raise SystemExit(f"usage: {Path(__file__).name} [--against REV]")
    report = measure()
    if rev is not None:
        report = {**report, "previous": previous(__file__, rev, [])}
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
