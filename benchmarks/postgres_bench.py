"""Per-stage overhead with PostgreSQL state, printed as one JSON object of medians.

1,000 no-op ``direct`` stages as a chain and as a fan-out/fan-in, with the state in a
PostgreSQL schema (bound: 2 ms per stage), and the same pipelines with SQLite state in the
same run, for comparison. Needs the test server: ``eval "$(make -s services)"`` (reads
``STEPKIT_TEST_POSTGRES_URL``; the schema it creates is dropped at the end).

The machine is shared and the server local: read the ratios, expect noise.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orchestrator_bench import chain, fan

from stepkit import Pipeline
from stepkit.state import SQLiteStateRepository, StateRepository
from stepkit.state.postgres import PostgresStateRepository

STAGES = 1000
REPEATS = 5
BOUND_MS = 2.0


def per_stage_ms(pipe: Pipeline, state: StateRepository) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = pipe.run(state=state)
        times.append(time.perf_counter() - start)
        assert result.ok, result.error
    return statistics.median(times) / STAGES * 1e3


def main() -> None:
    import psycopg

    base = os.environ.get("STEPKIT_TEST_POSTGRES_URL")
    if not base:
        raise SystemExit('Set STEPKIT_TEST_POSTGRES_URL: eval "$(make -s services)"')
    schema = f"stepkit_bench_{uuid.uuid4().hex[:8]}"
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"'.encode())
        try:
            pg = PostgresStateRepository(url)
            with tempfile.TemporaryDirectory() as tmp:
                lite = SQLiteStateRepository(Path(tmp) / "state.db")
                figures: dict[str, float] = {}
                for shape, pipe in (("chain", chain(STAGES)), ("fan", fan(STAGES))):
                    figures[f"{shape}_postgres_ms_per_stage"] = per_stage_ms(pipe, pg)
                    figures[f"{shape}_sqlite_ms_per_stage"] = per_stage_ms(pipe, lite)
                lite.close()
            pg.close()
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())
    worst = max(figures["chain_postgres_ms_per_stage"], figures["fan_postgres_ms_per_stage"])
    report = {
        "stages": STAGES,
        "repeats": REPEATS,
        **{k: round(v, 4) for k, v in figures.items()},
        "chain_postgres_over_sqlite": round(
            figures["chain_postgres_ms_per_stage"] / figures["chain_sqlite_ms_per_stage"], 2
        ),
        "fan_postgres_over_sqlite": round(
            figures["fan_postgres_ms_per_stage"] / figures["fan_sqlite_ms_per_stage"], 2
        ),
        "bound_ms_per_stage": BOUND_MS,
        "worst_postgres_over_bound": round(worst / BOUND_MS, 3),
        "within_bound": worst <= BOUND_MS,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
