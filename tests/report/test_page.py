"""What the report page says about recorded runs: one time unit, interrupted attempts drawn
to the runner's last sign of life, outputs, provenance, config, logs and errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from stepkit.pipeline.report import gather_report, render_report, report_page
from stepkit.pipeline.report.drawing import axis
from stepkit.pipeline.report.units import format_duration
from stepkit.state import LogBatch, RunRecord, RunStatus, StageRecord, StageStatus
from stepkit.state.memory import MemoryStateRepository

T0 = 1_800_000_000.0
DIGEST = "ab" * 32


class FakeEntry:
    def __init__(self, run_id: str, parts: Mapping[str, Any]) -> None:
        self.run_id = run_id
        self.parts = parts


class FakeCache:
    def __init__(self, entries: Mapping[str, FakeEntry]) -> None:
        self.entries = entries

    def get(self, cache_key: str) -> FakeEntry | None:
        return self.entries.get(cache_key)


def _output(run_id: str, node: str, key: str) -> dict[str, Any]:
    return {
        "_node": {"cache_key": key, "step_seconds": 0.25, "returned": {"rows": 7}},
        "table": {
            "path": f"/store/runs/{run_id}/{node}/table",
            "digest": DIGEST,
            "files": 2,
            "bytes": 123_456,
            "dedup_hits": 0,
        },
    }


@pytest.fixture
def state() -> MemoryStateRepository:
    """A run resumed after its runner died: load was a cache hit of an older run; train's
    first attempt was interrupted (its runner last wrote at +5 s, the resume reaped it at
    +17 s) and its second attempt failed."""
    repo = MemoryStateRepository()
    run = RunRecord(
        run_id="r2",
        pipeline="demo",
        status=RunStatus.FAILED,
        graph={"Load_training": (), "Train": ("Load_training",)},
        created_at=T0,
        started_at=T0,
        finished_at=T0 + 20,
        error="stages failed: Train",
    )
    reason = "runner pid 1 on host stopped without finishing (lease lost)"
    repo.commit(
        runs=[run],
        stages=[
            StageRecord(
                "r2",
                "Load_training",
                1,
                StageStatus.CACHED,
                started_at=T0,
                finished_at=T0 + 0.01,
                duration=0.01,
                outputs=_output("r1", "Load_training", "k1"),
            ),
            StageRecord(
                "r2",
                "Train",
                1,
                StageStatus.INTERRUPTED,
                mode="subprocess",
                started_at=T0 + 1,
                finished_at=T0 + 17,
                reason=reason,
            ),
            StageRecord(
                "r2",
                "Train",
                2,
                StageStatus.FAILED,
                mode="subprocess",
                started_at=T0 + 17.5,
                finished_at=T0 + 19.5,
                duration=2.0,
                error_type="ValueError",
                error_message="bad <input> & more",
                traceback="Traceback…\nValueError: bad <input> & more",
            ),
        ],
        logs=[
            LogBatch("r2", "Train", 1, "stdout", T0 + 5, ["epoch 1", "epoch 2"]),
            LogBatch("r2", "Train", 2, "stderr", T0 + 19, [f"line {i}" for i in range(30)]),
        ],
    )
    return repo


CACHE = FakeCache(
    {
        "k1": FakeEntry(
            "r1", {"config": {"values": {"n_rows": 6000}}, "arguments": {"job_type": "training"}}
        )
    }
)


def test_an_interrupted_attempt_is_drawn_to_its_runners_last_sign_of_life(
    state: MemoryStateRepository,
) -> None:
    report = gather_report(state, "r2", cache=CACHE)
    first = report.stages["Train"].attempts[0]
    assert first.alive_until == T0 + 5  # its last log line, not the reap at +17 s
    assert first.drawn_until == T0 + 5
    page = render_report(report)
    (bar,) = re.findall(
        r'data-stage="Train" data-attempt="1">.*?<rect class="bar" x="([\d.]+)" '
        r'y="[\d.]+" width="([\d.]+)"',
        page,
    )
    (tail,) = re.findall(r'<line class="reaped" x1="([\d.]+)" y1="[\d.]+" x2="([\d.]+)"', page)
    assert float(bar[0]) + float(bar[1]) == pytest.approx(float(tail[0]), abs=0.2)
    assert float(tail[1]) > float(tail[0]) + 100  # 12 s of no heartbeat, drawn apart
    assert "runner last seen +5.0 s, reaped +17.0 s" in page
    assert "4.00 s until its runner was last seen; reaped +17.0 s" in page


def test_an_interrupted_attempt_ends_at_its_runners_last_heartbeat(
    state: MemoryStateRepository,
) -> None:
    # the reap kept the runner's last heartbeat (+11 s) on the attempt: later than its last
    # log line (+5 s), earlier than the reap (+17 s)
    (first,) = [r for r in state.stage_records("r2") if r.stage == "Train" and r.attempt == 1]
    state.commit(stages=[replace(first, last_heartbeat=T0 + 11)])
    report = gather_report(state, "r2", cache=CACHE)
    attempt = report.stages["Train"].attempts[0]
    assert attempt.alive_until == T0 + 11
    page = render_report(report)
    assert "runner last seen +11.0 s, reaped +17.0 s" in page
    assert "10.0 s until its runner was last seen; reaped +17.0 s" in page


def test_a_heartbeat_recorded_after_the_reap_is_not_taken_for_a_sign_of_life(
    state: MemoryStateRepository,
) -> None:
    (first,) = [r for r in state.stage_records("r2") if r.stage == "Train" and r.attempt == 1]
    state.commit(stages=[replace(first, last_heartbeat=T0 + 30)])
    attempt = gather_report(state, "r2", cache=CACHE).stages["Train"].attempts[0]
    assert attempt.alive_until == T0 + 5  # its last log line still: a beat past +17 is not


def test_stage_details_carry_outputs_provenance_config_logs_and_error(
    state: MemoryStateRepository,
) -> None:
    page = report_page(state, "r2", cache=CACHE)
    assert "made by run <b class='mono'>r1</b>" in page
    assert f"<td class='mono'>{DIGEST}</td>" in page
    assert "<td class='mono'>/store/runs/r1/Load_training/table</td>" in page
    assert "123.5 kB" in page
    assert "<tr><td>n_rows</td><td class='mono'>6000</td></tr>" in page
    assert "<tr><td>job_type</td><td class='mono'>training</td></tr>" in page
    assert "ValueError</b>: bad &lt;input&gt; &amp; more" in page
    assert "log of attempt #2 (last 20 of 30 lines)" in page
    assert "[stderr] line 29" in page and "[stderr] line 9\n" not in page
    assert "[stdout] epoch 2" in page
    # The job type reads apart from the step's name, in the box.
    assert '<text class="label jobtype"' in page and ">training</text>" in page


def test_the_timeline_uses_one_unit_and_one_precision() -> None:
    ax = axis(T0, 9.3)
    labels = [text for _, text in ax.ticks()]
    assert labels == ["0 s", "2 s", "4 s", "6 s", "8 s", "10 s"]
    assert [text for _, text in axis(T0, 0.42).ticks()] == [f"0.{k} s" for k in range(6)]
    assert [text for _, text in axis(T0, 600).ticks()][:3] == ["0 min", "2 min", "4 min"]
    assert ax.at(T0 + 4.25) == "+4.2 s"
    assert [format_duration(s) for s in (0.0042, 0.5, 2.459, 12.34, 200)] == [
        "0.004 s",
        "0.500 s",
        "2.46 s",
        "12.3 s",
        "3 min 20.0 s",
    ]


def test_only_a_catalogued_steps_suffix_reads_as_a_job_type() -> None:
    state = MemoryStateRepository()
    graph = {"after_bad": (), "TabularPreprocessing_calibration": ("after_bad",)}
    state.commit(
        runs=[RunRecord(run_id="r", pipeline="p", status=RunStatus.COMPLETED, graph=graph)]
    )
    page = report_page(state, "r")
    assert 'font-weight="bold">after_bad</text>' in page
    assert 'font-weight="bold">TabularPreprocessing</text>' in page
    assert re.findall(r'<text class="label jobtype"[^>]*>([^<]*)</text>', page) == ["calibration"]
