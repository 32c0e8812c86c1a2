"""The store's OpenTelemetry counters, read back through an in-memory reader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, tempfile
    from datetime import timedelta
    from pathlib import Path
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    from stepkit.artifacts import ArtifactStore

    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(root=Path(tmp), grace=timedelta(0))
        a = store.put_bytes(b"abc", artifact_id="a", source="s", producer="p")
        store.put_bytes(b"abc", artifact_id="b", source="s", producer="p")
        orphan = store.put_bytes(b"orphan", artifact_id="o", source="s", producer="p")
        store.forget(orphan.record.id)
        store.gc(apply=True)
        os.chmod(a.storage_path, 0o644)
        a.storage_path.write_bytes(b"ABC")
        store.verify()
        store.close()
    values = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                values[m.name] = sum(p.value for p in m.data.data_points)
    print(json.dumps(values))
    """
)


def test_counters_count_what_happened() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == {
        "bytes_stored_total": 9,
        "dedup_hits_total": 1,
        "gc_removed_total": 1,
        "verify_failures_total": 1,
    }
