"""structlog events and OpenTelemetry metrics, checked in a fresh interpreter (the meter
provider is process-global and can be set once)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from stepkit.observability import configure_logging
    from stepkit import Pipeline, RetryPolicy

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    configure_logging(level=logging.INFO)

    def flaky(context):
        if context.attempt < 2:
            raise ConnectionError("net down")

    def bad(context):
        raise ValueError("boom")

    pipe = Pipeline("observed")
    pipe.add("flaky", flaky, retry=RetryPolicy(max_attempts=2, delay=0))
    pipe.add("bad", bad, depends_on=["flaky"])
    pipe.add("after", flaky, depends_on=["bad"])
    pipe.run(state="memory://")
    found = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    key = metric.name + ":" + point.attributes["stage"]
                    found[key] = getattr(point, "value", None) or getattr(point, "count", None)
    print(json.dumps(found, sort_keys=True))
    """
)


def test_stage_events_and_metrics_are_emitted() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    seen = [(e["event"], e["stage"], e.get("attempt")) for e in events]
    assert seen == [
        ("stage_started", "flaky", 1),
        ("stage_retried", "flaky", 1),
        ("stage_started", "flaky", 2),
        ("stage_completed", "flaky", 2),
        ("stage_started", "bad", 1),
        ("stage_failed", "bad", 1),
        ("stage_skipped", "after", None),
    ]
    run_ids = {e["run_id"] for e in events}
    assert len(run_ids) == 1
    assert all(
        "duration" in e
        for e in events
        if e["event"] in {"stage_completed", "stage_failed", "stage_retried"}
    )
    assert json.loads(done.stdout) == {
        "stepkit.stage.duration:bad": 1,
        "stepkit.stage.duration:flaky": 2,
        "stepkit.stage.failures:bad": 1,
        "stepkit.stage.retries:flaky": 1,
    }
