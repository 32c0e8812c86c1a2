"""Per-step environment benchmark: prints one JSON object with medians and each bound.

1. the first build of an environment of ten small pure-Python packages, beside
   ``python -m venv`` + ``pip install`` of the same requirements in the same run;
2. building it again into a fresh folder with uv's cache warm (bound: 5 s);
3. reusing the built one: normalizing the requirements, hashing them and finding the
   environment, as a stage does before it starts (bound: 50 ms).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stepkit.envs import EnvSpec, EnvStore, ensure_environment
from stepkit.envs.uvtool import pip_settings

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


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_first_build(root: Path) -> dict[str, float]:
    """uv's cache may already hold these wheels (as pip's may): "first" is the store's."""
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
    spec = EnvSpec.from_requirements(REQUIREMENTS)
    samples = []
    for index in range(n):
        store = EnvStore(root / f"warm-{index}")
        started = time.perf_counter()
        ensure_environment(spec, store=store)
        samples.append(time.perf_counter() - started)
    median = _median(samples)
    return {"median_s": round(median, 3), "bound_s": 5.0, "ratio_to_bound": round(median / 5.0, 3)}


def bench_reuse(root: Path, n: int = 500) -> dict[str, float]:
    store = EnvStore(root / "first")
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        spec = EnvSpec.from_requirements(REQUIREMENTS)
        environment = ensure_environment(spec, store=store)
        samples.append(time.perf_counter() - started)
        assert environment.python.exists()
    median_ms = _median(samples) * 1000
    return {
        "median_ms": round(median_ms, 4),
        "bound_ms": 50.0,
        "ratio_to_bound": round(median_ms / 50.0, 5),
    }


def main() -> None:
    from stepkit.envs.uvtool import uv_binary
    from stepkit.errors import UvNotInstalledError

    try:
        uv_binary()
    except UvNotInstalledError as exc:  # `make bench` installs the examples extra only
        json.dump({"skipped": str(exc)}, sys.stdout)
        sys.stdout.write("\n")
        return
    # pip's index settings are read once per process (``pip config list``): reported apart,
    # since a `stepkit env build` pays it once however many environments it builds.
    started = time.perf_counter()
    pip_settings()
    pip_config_s = round(time.perf_counter() - started, 3)
    with tempfile.TemporaryDirectory(prefix="stepkit-env-bench-") as tmp:
        root = Path(tmp)
        report = {
            "pip_config_read_s": pip_config_s,
            "first_build": bench_first_build(root),
            "warm_build": bench_warm_build(root),
            "reuse": bench_reuse(root),
        }
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
