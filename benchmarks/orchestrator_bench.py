"""Orchestrator overhead, printed as one JSON object of medians.

- per-stage overhead with SQLite state: 1,000 no-op ``direct`` stages as a chain and as a
  fan-out/fan-in (bound: 150 µs);
- ``subprocess`` mode per stage vs a bare ``subprocess.run([python, "-c", "pass"])``
  measured in the same run (bound: 1.25 ×);
- 1,000,000 log lines from one subprocess stage, captured and persisted (bound: 3 s).

The machine is shared: read the ratios, and expect a few percent of noise.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from against import previous, split_against
from bench_stages import million_lines, noop

from stepkit import Pipeline
from stepkit.state import SQLiteStateRepository

STAGES = 1000
SUBPROCESS_STAGES = 30
REPEATS = 5


def chain(n: int) -> Pipeline:
    pipe = Pipeline("chain")
    previous: list[str] = []
    for i in range(n):
        pipe.add(f"s{i}", noop, depends_on=previous)
        previous = [f"s{i}"]
    return pipe


def fan(n: int) -> Pipeline:
    pipe = Pipeline("fan")
    pipe.add("source", noop)
    middle = [f"m{i}" for i in range(n - 2)]
    for name in middle:
        pipe.add(name, noop, depends_on=["source"])
    pipe.add("sink", noop, depends_on=middle)
    return pipe


def per_stage_us(pipe: Pipeline, state: SQLiteStateRepository, stages: int) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = pipe.run(state=state)
        times.append(time.perf_counter() - start)
        assert result.ok, result.error
    return statistics.median(times) / stages * 1e6


def subprocess_chain(n: int) -> Pipeline:
    pipe = Pipeline("subprocess-chain")
    previous: list[str] = []
    for i in range(n):
        pipe.add(f"p{i}", noop, depends_on=previous, mode="subprocess")
        previous = [f"p{i}"]
    return pipe


def bare_subprocess_ms() -> float:
    times = []
    for _ in range(SUBPROCESS_STAGES * 2):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    rev, argv = split_against(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        state = SQLiteStateRepository(Path(tmp) / "state.db")
        chain_us = per_stage_us(chain(STAGES), state, STAGES)
        fan_us = per_stage_us(fan(STAGES), state, STAGES)

        sub = subprocess_chain(SUBPROCESS_STAGES)
        bare, staged = [], []
        for _ in range(REPEATS):  # interleaved, so both see the same machine load
            bare.append(bare_subprocess_ms())
            start = time.perf_counter()
            assert sub.run(state=state, max_workers=1).ok
            staged.append((time.perf_counter() - start) / SUBPROCESS_STAGES * 1e3)
        bare_ms, stage_ms = statistics.median(bare), statistics.median(staged)

        logs = Pipeline("logs")
        logs.add("print", million_lines, mode="subprocess")
        log_times = []
        for _ in range(3):
            start = time.perf_counter()
            result = logs.run(state=state)
            log_times.append(time.perf_counter() - start)
            assert result.ok and state.count_logs(result.run_id) == 1_000_000
        log_s = statistics.median(log_times)
        state.close()

    figures: dict[str, Any] = {
        "direct_chain_us_per_stage": round(chain_us, 1),
        "direct_fan_us_per_stage": round(fan_us, 1),
        "direct_bound_us": 150,
        "direct_chain_ratio_to_bound": round(chain_us / 150, 3),
        "direct_fan_ratio_to_bound": round(fan_us / 150, 3),
        "subprocess_stage_ms": round(stage_ms, 2),
        "bare_subprocess_run_ms": round(bare_ms, 2),
        "subprocess_ratio": round(stage_ms / bare_ms, 3),
        "subprocess_bound_ratio": 1.25,
        "million_log_lines_s": round(log_s, 3),
        "million_log_lines_bound_s": 3.0,
        "stages": STAGES,
        "repeats": REPEATS,
    }
    if rev is not None:
        figures["previous"] = previous(__file__, rev, argv)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
