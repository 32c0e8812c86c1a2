"""The report of real runs of the example pipeline (completed, cached, failed, resumed
after its runner was killed), opened in headless Chromium and checked as a person sees it:
every label inside its box, every edge from box to box and never under one, nothing
fetched from anywhere, each stage's details on the page."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "churn"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CALIBRATION = "steps/scripts/model_calibration.py"
MAIN = "def main(input_paths, output_paths, environ_vars, job_args):\n"


def _need_browser() -> Any:
    """Playwright's sync API, pointed at Debian's chromium; CI must have both."""
    problem = None
    if not CHROMIUM.is_file():
        problem = "chromium is not installed (apt-get install chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the browser test: {problem}", pytrace=False)
        pytest.skip(problem)
    return sync_api


def _stepkit(root: Path, *args: str, check: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "stepkit", "-p", str(root), *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == check, done.stderr[-2000:]
    return done


def _patch_calibration(root: Path, lines: str) -> None:
    script = root / CALIBRATION
    original = (EXAMPLE / CALIBRATION).read_text(encoding="utf-8")
    assert MAIN in original
    script.write_text(original.replace(MAIN, MAIN + lines, 1), encoding="utf-8")


def _latest_run(root: Path) -> str:
    with sqlite3.connect(root / ".stepkit" / "state.db") as conn:
        (run_id,) = conn.execute("SELECT run_id FROM runs ORDER BY created_at DESC").fetchone()
    return str(run_id)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five reports of four runs of one copy of the example project."""
    _need_browser()
    root = tmp_path_factory.mktemp("report") / "churn"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".stepkit", "report*.html"))
    run = [
        "run",
        str(root / "pipelines/churn.yaml"),
        "-c",
        str(root / "pipelines/churn-config.yaml"),
    ]
    out: dict[str, Path] = {}
    _stepkit(root, *run, "--report", str(root / "completed.html"))
    out["completed"] = root / "completed.html"
    first = _latest_run(root)
    _stepkit(root, *run, "--report", str(root / "cached.html"))
    out["cached"] = root / "cached.html"
    (root / "first-run").write_text(first)

    _patch_calibration(
        root,
        '    print("calibrating: reading the model", flush=True)\n'
        '    raise RuntimeError("calibration went wrong on purpose")\n',
    )
    _stepkit(root, *run, "--report", str(root / "failed.html"), check=1)
    out["failed"] = root / "failed.html"

    hold = root / "hold"
    hold.write_text("")
    _patch_calibration(
        root,
        "    import os, time\n"
        '    print("calibrating: waiting for the hold file to go", flush=True)\n'
        f"    while os.path.exists({str(hold)!r}):\n"
        "        time.sleep(0.05)\n",
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "stepkit", "-p", str(root), *run],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not _waiting(root):
            assert time.monotonic() < deadline, "the calibration never started"
            assert runner.poll() is None, "the runner ended before it could be killed"
            time.sleep(0.1)
        time.sleep(1.0)  # a stretch with no sign of life: the report must not draw it as running
    finally:
        # The machine "dies": the runner and its stage processes (each in a session of
        # its own) go at once.
        doomed = [runner.pid, *(p.pid for p in psutil.Process(runner.pid).children(recursive=True))]
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        runner.wait(timeout=30)
    hold.unlink()
    interrupted = _latest_run(root)
    _stepkit(root, "runs", "resume", interrupted)
    _stepkit(root, "runs", "report", interrupted, "-o", str(root / "resumed.html"))
    out["resumed"] = root / "resumed.html"
    (root / "interrupted-run").write_text(interrupted)
    return out


def _waiting(root: Path) -> bool:
    """The hanging calibration has written its line and the runner has stored it."""
    db = root / ".stepkit" / "state.db"
    if not db.is_file():
        return False
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM log_events e JOIN log_streams s ON e.stream_id = s.id "
                "WHERE s.stage = 'ModelCalibration' AND e.message LIKE '%waiting for the hold%'"
            ).fetchone()
    except sqlite3.OperationalError:  # the runner is still creating its tables
        return False
    return bool(rows and rows[0])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _need_browser()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class Opened:
    """A report open in a page, with every request it made."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.requests: list[str] = []
        self.url = path.as_uri()
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.route("**/*", self._route)
        self.page.goto(self.url)

    def _route(self, route: Any) -> None:
        self.requests.append(route.request.url)
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()

    def text(self, selector: str) -> list[str]:
        return [str(t) for t in self.page.locator(selector).all_text_contents()]


GEOMETRY = """() => {
  const boxes = {};
  const labels = [];
  for (const node of document.querySelectorAll('svg.dag g.node')) {
    const r = node.querySelector('rect.box').getBBox();
    boxes[node.dataset.node] = {x: r.x, y: r.y, w: r.width, h: r.height};
    for (const t of node.querySelectorAll('text.label')) {
      const b = t.getBBox();
      labels.push({node: node.dataset.node, text: t.textContent,
                   x: b.x, y: b.y, w: b.width, h: b.height});
    }
  }
  const edges = [];
  for (const edge of document.querySelectorAll('svg.dag g.edge')) {
    const path = edge.querySelector('path');
    const length = path.getTotalLength();
    const points = [];
    for (let at = 0; at <= length; at += 3) {
      const p = path.getPointAtLength(at);
      points.push([p.x, p.y]);
    }
    const end = path.getPointAtLength(length);
    points.push([end.x, end.y]);
    const arrow = edge.querySelector('polygon.arrow').getBBox();
    edges.push({from: edge.dataset.from, to: edge.dataset.to, points,
                arrow: {x: arrow.x, y: arrow.y, w: arrow.width, h: arrow.height}});
  }
  return {boxes, labels, edges};
}"""


def _inside(x: float, y: float, box: dict[str, float], *, margin: float) -> bool:
    return (
        box["x"] + margin < x < box["x"] + box["w"] - margin
        and box["y"] + margin < y < box["y"] + box["h"] - margin
    )


def _check_drawing(opened: Opened, stages: set[str]) -> None:
    geometry = opened.page.evaluate(GEOMETRY)
    boxes: dict[str, dict[str, float]] = geometry["boxes"]
    assert set(boxes) == stages
    for label in geometry["labels"]:
        box = boxes[label["node"]]
        assert box["x"] <= label["x"] and label["x"] + label["w"] <= box["x"] + box["w"], label
        assert box["y"] <= label["y"] and label["y"] + label["h"] <= box["y"] + box["h"], label
    assert geometry["edges"]
    for edge in geometry["edges"]:
        source, target = boxes[edge["from"]], boxes[edge["to"]]
        (x0, y0), (x1, y1) = edge["points"][0], edge["points"][-1]
        assert abs(y0 - (source["y"] + source["h"])) < 0.6, edge["from"]
        assert source["x"] < x0 < source["x"] + source["w"]
        assert abs(y1 - target["y"]) < 0.6, edge["to"]  # ends on the target's top side
        assert target["x"] < x1 < target["x"] + target["w"]
        arrow = edge["arrow"]  # the arrowhead's tip touches that side
        assert abs(arrow["y"] + arrow["h"] - target["y"]) < 0.6
        for name, box in boxes.items():
            for x, y in edge["points"]:
                assert not _inside(x, y, box, margin=0.5), (
                    f"{edge['from']} → {edge['to']} under {name}"
                )


ALL = {
    "DataLoading_training",
    "DataLoading_calibration",
    "DataLoading_testing",
    "TabularPreprocessing_training",
    "TabularPreprocessing_calibration",
    "TabularPreprocessing_testing",
    "GradientBoostingTraining",
    "ModelCalibration",
    "ModelEvaluation",
    "ModelPackaging",
    "ModelRegistration",
}


@pytest.mark.parametrize("which", ["completed", "cached", "failed", "resumed"])
def test_every_label_fits_every_edge_joins_two_boxes_and_nothing_is_fetched(
    browser: Any, reports: dict[str, Path], which: str
) -> None:
    opened = Opened(browser, reports[which])
    _check_drawing(opened, ALL)
    assert opened.requests == [opened.url]
    sections = opened.page.locator("section.stage")
    assert sections.count() == len(ALL)
    # The job-type variants read apart, in the box itself.
    tags = opened.text("svg.dag text.jobtype")
    assert sorted(tags) == sorted(["training", "calibration", "testing"] * 2)
    ticks = opened.text("svg.timeline text.tick")
    # One unit and one precision along the axis (never "0.0 ms" then seconds).
    # (a cached run lasts milliseconds: its ticks are 0.000 s, 0.001 s, ...)
    assert all(t.endswith(" s") for t in ticks) and float(ticks[0].removesuffix(" s")) == 0
    decimals = {t.removesuffix(" s").partition(".")[2].__len__() for t in ticks}
    assert len(decimals) == 1  # one precision
    assert len({len(t.removesuffix(" s").partition(".")[2]) for t in ticks}) == 1
    opened.page.close()


def test_a_completed_run_shows_outputs_config_and_returned_values(
    browser: Any, reports: dict[str, Path]
) -> None:
    opened = Opened(browser, reports["completed"])
    section = opened.page.locator("section.stage[data-stage='DataLoading_training']")
    text = section.inner_text()
    assert "completed" in text
    cells = section.locator("table.outputs td").all_inner_texts()
    assert "DATA" in cells and "METADATA" in cells
    digests = [c for c in cells if len(c) == 64 and all(ch in "0123456789abcdef" for ch in c)]
    assert len(digests) == 2
    assert any("/runs/" in c and c.endswith("/DataLoading_training/DATA") for c in cells)
    config = section.locator("table.config td").all_inner_texts()
    assert config[config.index("n_rows") : config.index("n_rows") + 2] == ["n_rows", "6000"]
    assert '"rows": 6000' in section.locator(".returned").inner_text()
    opened.page.close()


def test_a_cached_run_names_the_run_that_made_each_output(
    browser: Any, reports: dict[str, Path]
) -> None:
    first = (reports["cached"].parent / "first-run").read_text()
    opened = Opened(browser, reports["cached"])
    for stage in ALL:
        section = opened.page.locator(f"section.stage[data-stage='{stage}']")
        provenance = section.locator(".provenance").inner_text()
        assert f"made by run {first}" in provenance, stage
    opened.page.close()


def test_a_failed_run_shows_the_error_its_log_and_what_was_skipped(
    browser: Any, reports: dict[str, Path]
) -> None:
    opened = Opened(browser, reports["failed"])
    failed = opened.page.locator("section.stage[data-stage='ModelCalibration']")
    assert (
        "RuntimeError: calibration went wrong on purpose" in failed.locator(".error").inner_text()
    )
    assert "[stdout] calibrating: reading the model" in failed.locator("pre.log").inner_text()
    assert "raise RuntimeError" in failed.locator("pre.traceback").text_content()
    skipped = opened.page.locator("section.stage[data-stage='ModelRegistration']").inner_text()
    assert "skipped" in skipped and "upstream stage 'ModelPackaging'" in skipped
    opened.page.close()


def test_an_interrupted_attempt_ends_where_its_runner_was_last_seen(
    browser: Any, reports: dict[str, Path]
) -> None:
    opened = Opened(browser, reports["resumed"])
    section = opened.page.locator("section.stage[data-stage='ModelCalibration']")
    rows = section.locator("table.attempts tr").all_inner_texts()
    assert rows[1].startswith("#1\tinterrupted") and rows[2].startswith("#2\tcompleted")
    assert "until its runner was last seen" in rows[1]
    first = opened.page.locator(
        "svg.timeline g.attempt[data-stage='ModelCalibration'][data-attempt='1']"
    )
    bar = first.locator("rect.bar").bounding_box()
    tail = first.locator("line.reaped").bounding_box()
    assert bar is not None and tail is not None
    # The runner was killed a second after the last line; the resume reaped it later.
    assert bar["x"] + bar["width"] <= tail["x"] + 1
    assert tail["width"] > 5
    assert "runner last seen" in str(first.locator("text.note").text_content())
    opened.page.close()
