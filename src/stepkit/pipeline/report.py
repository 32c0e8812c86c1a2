"""A run as one self-contained HTML page: the DAG and a Gantt timeline of every attempt,
drawn as inline SVG. No script, no stylesheet or font from anywhere: it opens offline."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape

from stepkit.pipeline.dag import depths
from stepkit.state.records import RunRecord, StageRecord, latest_attempts

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

_NODE_W, _NODE_H, _GAP_X, _GAP_Y = 150, 34, 60, 16
_ROW_H, _LABEL_W, _CHART_W = 20, 220, 760


def render_report(run: RunRecord, records: Sequence[StageRecord]) -> str:
    """The report page for ``run`` and its attempt records."""
    latest = latest_attempts(list(records))
    title = f"Run {run.run_id} — {run.pipeline}"
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td style='color:{_color(str(rec.status))}'>"
        f"{escape(str(rec.status))}</td><td>{rec.attempt}</td><td>{_seconds(rec.duration)}</td>"
        f"<td>{escape(rec.error_message or rec.reason or '')}</td></tr>"
        for name, rec in latest.items()
    )
    legend = " ".join(
        f"<span class='key'><i style='background:{color}'></i>{escape(status)}</span>"
        for status, color in COLORS.items()
    )
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run.created_at))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 10px; border-bottom: 1px solid #ddd;
text-align: left; }} .key {{ margin-right: 12px; }} .key i {{ display: inline-block; width: 10px;
height: 10px; margin-right: 4px; }} svg text {{ font: 12px system-ui, sans-serif; }}
</style></head><body>
<h1>{escape(title)}</h1>
<p>Status <b style="color:{_color(str(run.status))}">{escape(str(run.status))}</b> ·
created {escape(created)} · duration {_seconds(_run_duration(run))} ·
retries {run.retries}{" · " + escape(run.error) if run.error else ""}</p>
<p>{legend}</p>
<h2>Stages</h2>
<svg role="img" aria-label="pipeline DAG" {_dag(run, latest)}
<h2>Timeline of attempts</h2>
<svg role="img" aria-label="Gantt timeline" {_gantt(records)}
<h2>Summary</h2>
<table><tr><th>stage</th><th>status</th><th>attempts</th><th>duration</th>
<th>error / reason</th></tr>
{rows}</table>
</body></html>
"""


def _color(status: str) -> str:
    return COLORS.get(status, "#616161")


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _run_duration(run: RunRecord) -> float | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return run.finished_at - run.started_at


def _dag(run: RunRecord, latest: Mapping[str, StageRecord]) -> str:
    """Stages in columns by depth, edges from each dependency to its dependent."""
    graph = dict(run.graph) or {name: () for name in latest}
    layer = depths(graph)
    columns: dict[int, list[str]] = {}
    for name in graph:
        columns.setdefault(layer[name], []).append(name)
    position: dict[str, tuple[int, int]] = {}
    for depth, names in columns.items():
        for row, name in enumerate(names):
            position[name] = (depth * (_NODE_W + _GAP_X) + 10, row * (_NODE_H + _GAP_Y) + 10)
    width = (max(columns, default=0) + 1) * (_NODE_W + _GAP_X) + 20
    height = max((len(v) for v in columns.values()), default=1) * (_NODE_H + _GAP_Y) + 20
    parts = [f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for name, deps in graph.items():
        x2, y2 = position[name]
        for dep in deps:
            if dep in position:
                x1, y1 = position[dep]
                parts.append(
                    f'<line x1="{x1 + _NODE_W}" y1="{y1 + _NODE_H // 2}" x2="{x2}" '
                    f'y2="{y2 + _NODE_H // 2}" stroke="#888" stroke-width="1.2"/>'
                )
    for name, (x, y) in position.items():
        record = latest.get(name)
        status = str(record.status) if record else "pending"
        label = name if len(name) <= 20 else name[:19] + "…"
        parts.append(
            f"<g><title>{escape(name)}: {escape(status)}</title>"
            f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="6" '
            f'fill="{_color(status)}"/>'
            f'<text x="{x + 8}" y="{y + 21}" fill="#fff">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _gantt(records: Sequence[StageRecord]) -> str:
    """One row per attempt that ran, its bar from start to finish on a shared time axis."""
    ran = sorted(
        (r for r in records if r.started_at is not None),
        key=lambda r: (r.started_at or 0.0, r.stage, r.attempt),
    )
    if not ran:
        return 'width="400" height="30"><text x="4" y="20">No attempt ran.</text></svg>'
    start = min(r.started_at or 0.0 for r in ran)
    end = max((r.finished_at or r.started_at or start) for r in ran)
    span = max(end - start, 1e-6)
    height = len(ran) * _ROW_H + 30
    width = _LABEL_W + _CHART_W + 60  # room for the last tick's label
    parts = [f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for tick in range(5):
        x = _LABEL_W + _CHART_W * tick / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" fill="#666">'
            f"{_seconds(span * tick / 4)}</text>"
        )
    for row, record in enumerate(ran):
        y = row * _ROW_H + 2
        began = (record.started_at or start) - start
        finished = (record.finished_at or end) - start
        x = _LABEL_W + _CHART_W * began / span
        w = max(_CHART_W * (finished - began) / span, 1.5)
        label = f"{record.stage} #{record.attempt}"
        tip = f"{label}: {record.status}, {_seconds(record.duration)}"
        if record.error_message:
            tip += f" — {record.error_message}"
        parts.append(
            f'<text x="4" y="{y + 13}">{escape(label[:32])}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_ROW_H - 5}" rx="2" '
            f'fill="{_color(str(record.status))}"><title>{escape(tip)}</title></rect>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
