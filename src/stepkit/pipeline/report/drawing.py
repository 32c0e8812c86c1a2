"""The report's two pictures as inline SVG: the DAG (boxes sized to their names, edges
with arrowheads) and the timeline of every attempt on one time axis."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from stepkit.names import is_pascal_case, split_node_name
from stepkit.pipeline.report.data import AttemptView, RunReport, StageView
from stepkit.pipeline.report.layout import Layout, layered_layout
from stepkit.pipeline.report.text import text_width, wrap_words
from stepkit.pipeline.report.units import format_duration
from stepkit.state.records import StageStatus

COLORS: Mapping[str, str] = {
    "completed": "#2e7d32",
    "cached": "#00838f",
    "failed": "#c62828",
    "timed_out": "#ef6c00",
    "skipped": "#9e9e9e",
    "cancelled": "#6d4c41",
    "interrupted": "#8e24aa",
    "running": "#1565c0",
    "pending": "#bdbdbd",
}

_PAD_X, _PAD_Y, _MAX_NAME_W = 12.0, 8.0, 300.0
_NAME, _TAG, _STATUS = 13.0, 11.0, 11.0  # font sizes (px)
_LINE = 1.35  # line height, in font sizes
_ROW_H, _CHART_W = 22.0, 720.0


def color(status: str) -> str:
    return COLORS.get(status, "#616161")


def anchor(index: int, name: str) -> str:
    """The page-local id of a stage's details (any stage name makes a valid id)."""
    return f"stage-{index}-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


# -- the DAG ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Label:
    name_lines: tuple[str, ...]
    job_type: str | None
    status_line: str
    width: float
    height: float


def _label(stage: StageView) -> _Label:
    base, job_type = split_node_name(stage.name)
    if not is_pascal_case(base):  # a plain function's name (``after_bad``), not a variant
        base, job_type = stage.name, None
    lines = tuple(wrap_words(base, size=_NAME, bold=True, max_width=_MAX_NAME_W))
    latest = stage.latest
    ran = latest is not None and latest.duration and latest.status != StageStatus.CACHED
    status = stage.status + (f" · {format_duration(latest.duration)}" if latest and ran else "")
    if len(stage.attempts) > 1:
        status += f" · {len(stage.attempts)} attempts"
    widths = [text_width(line, size=_NAME, bold=True) for line in lines]
    widths.append(text_width(status, size=_STATUS))
    height = len(lines) * _NAME * _LINE + _STATUS * _LINE
    if job_type:
        widths.append(text_width(job_type, size=_TAG) + 10)
        height += _TAG * _LINE + 4
    return _Label(lines, job_type, status, max(widths) + 2 * _PAD_X, height + 2 * _PAD_Y)


def dag_svg(report: RunReport) -> str:
    """The stages as a layered drawing; each box links to the stage's details."""
    labels = {name: _label(stage) for name, stage in report.stages.items()}
    graph = {name: stage.depends_on for name, stage in report.stages.items()}
    layout = layered_layout(graph, {n: (lb.width, lb.height) for n, lb in labels.items()})
    width, height = math.ceil(layout.width), math.ceil(layout.height)
    parts = [
        f'<svg class="dag" role="img" aria-label="pipeline DAG" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    parts += _edges(layout)
    for index, (name, stage) in enumerate(report.stages.items()):
        parts.append(_node(layout, name, stage, labels[name], anchor(index, name)))
    parts.append("</svg>")
    return "\n".join(parts)


def _edges(layout: Layout) -> list[str]:
    drawn = []
    for route in layout.routes:
        points = route.points
        d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}", f"L{points[1][0]:.1f},{points[1][1]:.1f}"]
        for k in range(1, len(points) - 1, 2):
            (x1, y1), (x2, y2) = points[k], points[k + 1]
            mid = (y1 + y2) / 2
            d.append(f"C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}")
            x3, y3 = points[k + 2]
            d.append(f"L{x3:.1f},{y3:.1f}")
        tip_x, tip_y = points[-1]
        base = tip_y - 9
        arrow = f"{tip_x - 4.5:.1f},{base:.1f} {tip_x + 4.5:.1f},{base:.1f} {tip_x:.1f},{tip_y:.1f}"
        drawn.append(
            f'<g class="edge" data-from="{escape(route.source)}" data-to="{escape(route.target)}">'
            f"<title>{escape(route.source)} → {escape(route.target)}</title>"
            f'<path d="{" ".join(d)}" fill="none" stroke="#78909c" stroke-width="1.4"/>'
            f'<polygon class="arrow" points="{arrow}" fill="#546e7a"/></g>'
        )
    return drawn


def _node(layout: Layout, name: str, stage: StageView, label: _Label, target: str) -> str:
    box = layout.boxes[name]
    fill = color(stage.status)
    x = box.x + _PAD_X
    y = box.y + _PAD_Y
    texts = []
    for line in label.name_lines:
        y += _NAME * _LINE
        texts.append(
            f'<text class="label" x="{x:.1f}" y="{y - 4:.1f}" font-size="{_NAME:g}" '
            f'font-weight="bold">{escape(line)}</text>'
        )
    if label.job_type:
        tag_w = text_width(label.job_type, size=_TAG) + 10
        texts.append(
            f'<rect class="tag" x="{x:.1f}" y="{y + 1:.1f}" width="{tag_w:.1f}" '
            f'height="{_TAG * _LINE + 2:.1f}" rx="7" fill="#e3e8ec"/>'
            f'<text class="label jobtype" x="{x + 5:.1f}" y="{y + _TAG * _LINE - 1:.1f}" '
            f'font-size="{_TAG:g}" fill="#263238">{escape(label.job_type)}</text>'
        )
        y += _TAG * _LINE + 4
    y += _STATUS * _LINE
    texts.append(
        f'<text class="label status" x="{x:.1f}" y="{y - 3:.1f}" font-size="{_STATUS:g}" '
        f'fill="{fill}">{escape(label.status_line)}</text>'
    )
    tip = f"{name}: {stage.status}"
    return (
        f'<a href="#{target}"><g class="node" data-node="{escape(name)}">'
        f"<title>{escape(tip)}</title>"
        f'<rect class="box" x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{box.height:.1f}" rx="6" fill="#fff" stroke="{fill}" stroke-width="2"/>'
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}"'
        f' rx="6" fill="{fill}" fill-opacity="0.08"/>' + "".join(texts) + "</g></a>"
    )


# -- the timeline -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Axis:
    """A time axis in one unit: every tick and every offset on it is written the same way."""

    origin: float
    span: float
    unit: str
    per_unit: float
    step: float  # between ticks, in units
    decimals: int

    def at(self, t: float) -> str:
        """``t`` (Unix seconds) as an offset from the start of the run, one decimal finer
        than the ticks."""
        return f"+{(t - self.origin) / self.per_unit:.{self.decimals + 1}f} {self.unit}"

    def ticks(self) -> list[tuple[float, str]]:
        count = max(1, math.ceil(self.span / self.per_unit / self.step - 1e-9))
        return [
            (k * self.step * self.per_unit, f"{k * self.step:.{self.decimals}f} {self.unit}")
            for k in range(count + 1)
        ]


def axis(origin: float, span: float) -> Axis:
    """Ticks at 1, 2 or 5 × 10ⁿ units, at most about eight, in seconds or (past three
    minutes) in minutes, with as many decimals as the step needs and no more."""
    unit, per_unit = ("min", 60.0) if span >= 180 else ("s", 1.0)
    raw = max(span / per_unit, 1e-3) / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return Axis(origin, span, unit, per_unit, step, decimals)


def run_axis(report: RunReport) -> Axis:
    """The run's one time axis: from its first start to the last thing drawn."""
    attempts = [a for s in report.stages.values() for a in s.attempts if a.record.started_at]
    starts = [a.record.started_at or 0.0 for a in attempts]
    if report.run.started_at:
        starts.append(report.run.started_at)
    origin = min(starts, default=report.run.created_at)
    ends = [a.record.finished_at or a.drawn_until or origin for a in attempts]
    end = max([*ends, *starts], default=origin)
    return axis(origin, max(end - origin, 1e-3))


def timeline_svg(report: RunReport) -> str:
    """One row per attempt that ran: a bar from its start to its outputs being stored (or,
    interrupted, to the runner's last sign of life), with the wait before it started."""
    rows = sorted(
        (a for s in report.stages.values() for a in s.attempts if a.record.started_at),
        key=lambda a: (a.record.started_at or 0.0, a.record.stage, a.record.attempt),
    )
    if not rows:
        return (
            '<svg class="timeline" role="img" aria-label="Gantt timeline" width="400" '
            'height="30"><text x="4" y="20">No attempt ran.</text></svg>'
        )
    ax = run_axis(report)
    origin = ax.origin
    chart_span = ax.ticks()[-1][0]
    label_w = max(text_width(_row_label(a), size=12) for a in rows) + 16
    height = len(rows) * _ROW_H + 34

    def x_of(t: float) -> float:
        return label_w + _CHART_W * (t - origin) / chart_span

    body = []
    for offset, text in ax.ticks():
        x = label_w + _CHART_W * offset / chart_span
        body.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 22}" stroke="#e0e0e0"/>'
            f'<text class="tick" x="{x:.1f}" y="{height - 8}" text-anchor="middle" '
            f'font-size="11" fill="#555">{text}</text>'
        )
    done_at = _done_times(report)
    reaps = [
        a.record.finished_at
        for a in rows
        if a.record.status == StageStatus.INTERRUPTED and a.record.finished_at
    ]
    right = label_w + _CHART_W + 20
    for row, attempt in enumerate(rows):
        drawn, extent = _row(row, attempt, report, done_at, reaps, ax, x_of)
        body.append(drawn)
        right = max(right, extent)
    width = math.ceil(right + 8)
    head = (
        f'<svg class="timeline" role="img" aria-label="Gantt timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    )
    return "\n".join([head, *body, "</svg>"])


def _row_label(attempt: AttemptView) -> str:
    return f"{attempt.record.stage} #{attempt.record.attempt}"


def _done_times(report: RunReport) -> dict[str, float]:
    """When each stage's outputs were ready (its successful attempt's end)."""
    return {
        name: s.latest.finished_at
        for name, s in report.stages.items()
        if s.latest and s.latest.status.done and s.latest.finished_at
    }


def _row(
    row: int,
    attempt: AttemptView,
    report: RunReport,
    done_at: Mapping[str, float],
    reaps: Sequence[float],
    ax: Axis,
    x_of: Callable[[float], float],
) -> tuple[str, float]:
    """One attempt's row, and how far right its text reaches."""
    record = attempt.record
    started = record.started_at or ax.origin
    until = attempt.drawn_until or started
    y = row * _ROW_H + 4
    h = _ROW_H - 8
    status = str(record.status)
    x0, x1 = x_of(started), x_of(until)
    label = _row_label(attempt)
    note = format_duration(until - started)
    tip = f"{label}: {status}, {ax.at(started)} to {ax.at(until)} ({note})"
    out = [
        f'<g class="attempt" data-stage="{escape(record.stage)}" data-attempt="{record.attempt}">'
    ]
    out.append(f'<text x="4" y="{y + h - 2:.1f}" font-size="12">{escape(label)}</text>')
    wait = _ready_at(record.stage, report, done_at)
    resumed_between = wait is not None and any(wait < t < started for t in reaps)
    if record.attempt == 1 and wait is not None and wait < started and not resumed_between:
        out.append(
            f'<line class="handoff" x1="{x_of(wait):.1f}" y1="{y + h / 2:.1f}" x2="{x0:.1f}" '
            f'y2="{y + h / 2:.1f}" stroke="#90a4ae" stroke-width="2" stroke-dasharray="2 3">'
            f"<title>{escape(format_duration(started - wait))} from its last input being "
            f"ready to its start (the runner seeing the upstream end, and launching it)"
            f"</title></line>"
        )
    out.append(
        f'<rect class="bar" x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 2):.1f}" '
        f'height="{h:.1f}" rx="2" fill="{color(status)}"><title>{escape(tip)}</title></rect>'
    )
    end = max(x1, x0 + 2)
    if record.status == StageStatus.INTERRUPTED and record.finished_at:
        reaped = x_of(record.finished_at)
        out.append(
            f'<line class="reaped" x1="{end:.1f}" y1="{y + h / 2:.1f}" x2="{reaped:.1f}" '
            f'y2="{y + h / 2:.1f}" stroke="{color(status)}" stroke-width="1" '
            f'stroke-dasharray="4 3"><title>no sign of its runner after {ax.at(until)}; '
            f"reaped at {ax.at(record.finished_at)}</title></line>"
        )
        end = reaped
        note += f" · runner last seen {ax.at(until)}, reaped {ax.at(record.finished_at)}"
    elif record.status != StageStatus.CACHED:
        note += f" · {status}" if not record.status.done else ""
    out.append(
        f'<text class="note" x="{end + 6:.1f}" y="{y + h - 2:.1f}" font-size="11" fill="#444">'
        f"{escape(note)}</text></g>"
    )
    return "".join(out), end + 6 + text_width(note, size=11)


def _ready_at(name: str, report: RunReport, done_at: Mapping[str, float]) -> float | None:
    """When the last of a stage's inputs was ready, if all were made in this run."""
    deps: Sequence[str] = report.stages[name].depends_on
    times = [done_at.get(dep) for dep in deps]
    if not times or any(t is None for t in times):
        return None
    return max(t for t in times if t is not None)
