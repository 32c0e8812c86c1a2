"""Runtime tester benchmark: prints one JSON object with medians and each bound.

1. ``--fast`` in-process import check of a trivial script (bound: 5 ms);
2. an isolated run (child process, import, main, output check) against a bare
   ``python script.py`` of the same script, interleaved in the same run: unsandboxed
   (bound: 1.3x) and in the bubblewrap sandbox where it works (bound: 1.5x), with what
   the sandbox alone costs (``bwrap ARGS true`` less a bare ``true``) and the ratio that
   leaves as a floor;
3. ``test all`` over 100 trivial scripts with 2 jobs, catalog cold start included (bound: 6 s).

Each figure is measured for this checkout's ``src`` and for the previous commit's (``--base
COMMIT``; default the commit this branch left ``main`` at), each in a fresh process, in
the same run: the machine's load hits both alike.

    python benchmarks/tester_bench.py [--base COMMIT]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stepkit.components import ScriptContract
from stepkit.project import Project
from stepkit.sandbox import Sandbox, unavailable
from stepkit.testing import RuntimeTester, Status, Target, TestOptions
from stepkit.testing.script import fast_import_check, run_test

TRIVIAL = """\
def main(input_paths, output_paths, environ_vars, job_args):
    for folder in output_paths.values():
        with open(folder + "/done", "w") as handle:
            handle.write("ok")


if __name__ == "__main__":
    main({}, {}, {}, {})
"""


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def bench_fast(script: Path, n: int = 300) -> dict[str, float]:
    target = Target(name="trivial", script=script)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        result = fast_import_check(target)
        samples.append(time.perf_counter() - started)
        assert result.status is Status.PASS, result.reason
    median = _median_ms(samples)
    return {"median_ms": median, "bound_ms": 5.0, "ratio_to_bound": round(median / 5.0, 3)}


def bench_isolated(script: Path, root: Path, n: int = 40) -> dict[str, Any]:
    contract = ScriptContract(
        entry_point="trivial.py", expected_output_paths={"out": "/opt/ml/processing/output"}
    )
    target = Target(name="trivial", script=script, contract=contract)
    kinds = {"isolated": (TestOptions(temp_root=root, sandbox=False), 1.3)}
    if unavailable() is None:
        kinds["sandboxed"] = (TestOptions(temp_root=root, sandbox=True), 1.5)
    # the sandbox alone, as the test sets it up, around `true`: what no test can go below
    floors = {"true": ["true"]} if "sandboxed" in kinds else {}
    if floors:
        out = root / "floor" / "output" / "out"
        out.mkdir(parents=True)
        mapped = {"out": ("/opt/ml/processing/output", str(out))}
        sandbox, _, _ = Sandbox.mapping(str(out.parent.parent), inputs={}, outputs=mapped)
        floors["bwrap true"] = [*sandbox.command(), "true"]
    bare: list[float] = []
    runs: dict[str, list[float]] = {kind: [] for kind in [*kinds, *floors]}
    for _ in range(n):  # interleaved, so that load on the machine hits all alike
        started = time.perf_counter()
        subprocess.run([sys.executable, str(script)], check=True, cwd=root)
        bare.append(time.perf_counter() - started)
        for kind, (options, _) in kinds.items():
            started = time.perf_counter()
            result = run_test(target, options)
            runs[kind].append(time.perf_counter() - started)
            assert result.status is Status.PASS, result.reason
        for kind, argv in floors.items():
            started = time.perf_counter()
            subprocess.run(argv, check=True)
            runs[kind].append(time.perf_counter() - started)
    report: dict[str, Any] = {"bare_median_ms": _median_ms(bare)}
    if floors:
        alone = statistics.median(runs["bwrap true"]) - statistics.median(runs["true"])
        report["sandbox_alone"] = {
            "median_ms": round(alone * 1000, 3),  # bwrap ... true, less a bare true
            "floor_ratio": round(1 + alone / statistics.median(bare), 3),
        }
    for kind, (_, bound) in kinds.items():
        ratio = statistics.median(runs[kind]) / statistics.median(bare)
        report[kind] = {
            "median_ms": _median_ms(runs[kind]),
            "ratio": round(ratio, 3),
            "bound_ratio": bound,
            "ratio_to_bound": round(ratio / bound, 3),
        }
    if "sandboxed" not in kinds:
        report["sandboxed"] = f"not measured: {unavailable()}"
    return report


def write_project(root: Path, steps: int) -> Path:
    root.mkdir(parents=True)
    (root / "stepkit.toml").write_text(
        '[project]\nname = "bench"\n\n[[workspaces]]\nid = "shared"\npath = "steps"\n'
    )
    for i in range(steps):
        stem = f"trivial_step_{i:03d}"
        scripts, contracts = root / "steps" / "scripts", root / "steps" / "contracts"
        scripts.mkdir(parents=True, exist_ok=True)
        contracts.mkdir(parents=True, exist_ok=True)
        (scripts / f"{stem}.py").write_text(TRIVIAL)
        (contracts / f"{stem}_contract.py").write_text(
            "from stepkit.components import ScriptContract\n\n"
            f"{stem.upper()}_CONTRACT = ScriptContract(\n"
            f'    entry_point="{stem}.py",\n'
            '    expected_output_paths={"out": "/opt/ml/processing/output"},\n)\n'
        )
    return root


def bench_all(root: Path, runs: int = 3) -> dict[str, float]:
    samples = []
    for run in range(runs):
        project = write_project(root / f"project{run}", 100)
        started = time.perf_counter()
        tester = RuntimeTester(Project.load(project), temp_root=root)
        results = tester.test_all(jobs=2)
        samples.append(time.perf_counter() - started)
        assert len(results) == 100 and all(r.ok for r in results), [r.reason for r in results]
    median = statistics.median(samples)
    return {
        "median_s": round(median, 3),
        "bound_s": 6.0,
        "ratio_to_bound": round(median / 6.0, 3),
        "scripts": 100,
        "jobs": 2,
    }


def measure() -> None:
    """Measure the ``stepkit`` importable here; print the figures as JSON."""
    with tempfile.TemporaryDirectory(prefix="stepkit-tester-bench-") as tmp:
        root = Path(tmp)
        script = root / "trivial.py"
        script.write_text(TRIVIAL)
        isolated = bench_isolated(script, root)  # first: a fresh tester process, as a CLI run
        report = {
            "fast_import_check": bench_fast(script),
            "isolated_run": isolated,
            "test_all_100_jobs_2": bench_all(root),
        }
    print(json.dumps(report))


def base_source(commit: str) -> Path:
    """The ``src`` folder of ``commit``, extracted into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="stepkit-base-"))
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def _default_base() -> str:
    repo = Path(__file__).resolve().parent.parent
    found = subprocess.run(
        ["git", "-C", str(repo), "merge-base", "HEAD", "main"], capture_output=True, text=True
    )
    commit = found.stdout.strip() if found.returncode == 0 else ""
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return commit[:12] if commit and commit != head else "HEAD~1"


def _measured(src: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--measure"], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    measured: dict[str, Any] = json.loads(done.stdout)
    return measured


def main() -> None:
    args = sys.argv[1:]
    if "--measure" in args:
        measure()
        return
    commit = args[args.index("--base") + 1] if "--base" in args else _default_base()
    base = base_source(commit)
    try:
        current = Path(__file__).resolve().parent.parent / "src"
        result = {
            "new": _measured(current),
            f"base_{commit}": _measured(base),
            "load_average": os.getloadavg(),
        }
    finally:
        shutil.rmtree(base.parent, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
