"""A run as one self-contained HTML page: the DAG, a timeline of every attempt, and each
stage's details (attempts, outputs, cache provenance, config, last log lines, error).
No script, no stylesheet, font or image from anywhere: it opens offline."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from html import escape
from typing import Any

from stepkit.pipeline.report.data import AttemptView, RunReport, StageView
from stepkit.pipeline.report.drawing import (
    COLORS,
    Axis,
    anchor,
    color,
    dag_svg,
    run_axis,
    timeline_svg,
)
from stepkit.pipeline.report.text import FONT_FAMILY
from stepkit.pipeline.report.units import format_duration

_STYLE = f"""
body {{ font: 14px/1.45 {FONT_FAMILY}; margin: 24px; color: #222; max-width: 1400px; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 30px; }}
h3 {{ font-size: 15px; margin: 0 0 6px; }}
svg text {{ font-family: {FONT_FAMILY}; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 4px 0 10px; }}
td, th {{ padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }}
th {{ color: #555; font-weight: normal; border-bottom: 1px solid #ddd; }}
.key {{ margin-right: 12px; white-space: nowrap; }}
.key i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; }}
.stage {{ border-left: 4px solid #bbb; padding: 6px 0 6px 12px; margin: 18px 0; }}
.mono, pre {{ font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12px; }}
.mono {{ overflow-wrap: anywhere; }}
pre {{ background: #f6f8fa; padding: 8px; overflow-x: auto; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 4px 0; }}
.groups {{ display: flex; flex-wrap: wrap; gap: 0 32px; align-items: flex-start; }}
td.size {{ white-space: nowrap; }}
.error {{ color: #b71c1c; }} .muted {{ color: #666; }}
a {{ color: inherit; }}
"""


def render_report(report: RunReport) -> str:
    """The report page for a gathered run (see :func:`gather_report`)."""
    run = report.run
    title = f"Run {run.run_id} — {run.pipeline}"
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run.created_at))
    duration = run.finished_at - run.started_at if run.started_at and run.finished_at else None
    legend = " ".join(
        f"<span class='key'><i style='background:{c}'></i>{escape(s)}</span>"
        for s, c in COLORS.items()
    )
    ax = run_axis(report)
    details = "\n".join(
        _stage(index, stage, ax) for index, stage in enumerate(report.stages.values())
    )
    error = f" · <span class='error'>{escape(run.error)}</span>" if run.error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p>Status <b style="color:{color(str(run.status))}">{escape(str(run.status))}</b> ·
created {escape(created)} · took {format_duration(duration)} ·
retries {run.retries}{error}</p>
<p>{legend}</p>
<h2>Stages</h2>
<div class="scroll">{dag_svg(report)}</div>
<h2>Timeline of attempts</h2>
<p class="muted">Each bar runs from the attempt's launch until its outputs were stored;
a dotted lead-in is the wait between its last input being ready and its launch; an
interrupted attempt ends where its runner was last seen alive, and a dashed tail runs to
when it was reaped. Offsets are from the run's start.</p>
<div class="scroll">{timeline_svg(report)}</div>
<h2>Stage details</h2>
{details}
</body></html>
"""


def _stage(index: int, stage: StageView, ax: Axis) -> str:
    status = stage.status
    head = (
        f'<section class="stage" id="{anchor(index, stage.name)}" '
        f'data-stage="{escape(stage.name)}" style="border-color:{color(status)}">'
        f'<h3>{escape(stage.name)} <span style="color:{color(status)}">{escape(status)}</span></h3>'
    )
    body = [head]
    if stage.depends_on:
        body.append(f"<div class='muted'>after {escape(', '.join(stage.depends_on))}</div>")
    body.append(_attempts(stage, ax))
    if status == "cached":
        body.append(
            f"<p class='provenance'>Cache hit: its outputs were made by run <b class='mono'>"
            f"{escape(stage.made_by_run)}</b> (cache key <span class='mono'>"
            f"{escape(stage.cache_key or '')}</span>).</p>"
            if stage.made_by_run
            else "<p class='provenance'>Cache hit: the step cache no longer names the run that"
            " made its outputs; their paths below do.</p>"
        )
    if stage.outputs:
        body.append(
            "<table class='outputs'><tr><th>output</th><th>path</th><th>digest (sha256)</th>"
            "<th>files</th><th>size</th></tr>"
            + "".join(
                f"<tr><td>{escape(o.name)}</td><td class='mono'>{escape(o.path or '')}</td>"
                f"<td class='mono'>{escape(o.digest or '–')}</td><td>{o.files or '–'}</td>"
                f"<td class='size' title='{o.size if o.size is not None else ''} bytes'>"
                f"{_size(o.size)}</td></tr>"
                for o in stage.outputs
            )
            + "</table>"
        )
    if stage.step_seconds is not None and status == "completed":
        body.append(
            f"<p class='muted'>The step's own code ran {format_duration(stage.step_seconds)};"
            " the rest of the attempt was launching, reading inputs and storing outputs.</p>"
        )
    groups = [
        _values(title, values)
        for title, values in (
            ("config", stage.config or {}),
            ("environment", stage.environment),
            ("arguments", stage.arguments),
        )
        if values
    ]
    if groups:
        body.append(f"<div class='groups'>{''.join(groups)}</div>")
    if stage.returned not in (None, {}):
        body.append(
            f"<div>returned <span class='mono returned'>{escape(_json(stage.returned))}"
            "</span></div>"
        )
    for attempt in stage.attempts:
        body.append(_logs_and_error(attempt, len(stage.attempts) > 1))
    body.append("</section>")
    return "\n".join(body)


def _attempts(stage: StageView, ax: Axis) -> str:
    if not stage.attempts:
        return "<p class='muted'>Never attempted.</p>"
    rows = []
    for attempt in stage.attempts:
        r = attempt.record
        began = ax.at(r.started_at) if r.started_at else "–"
        took = format_duration(r.duration)
        if attempt.alive_until is not None and r.started_at is not None:
            took = (
                f"{format_duration(attempt.alive_until - r.started_at)} until its runner was"
                f" last seen; reaped {ax.at(r.finished_at) if r.finished_at else '–'}"
            )
        why = r.reason or ""
        rows.append(
            f"<tr><td>#{r.attempt}</td><td style='color:{color(str(r.status))}'>"
            f"{escape(str(r.status))}</td><td>{began}</td><td>{escape(took)}</td>"
            f"<td>{escape(r.mode)}</td><td>{escape(why)}</td></tr>"
        )
    return (
        "<table class='attempts'><tr><th>attempt</th><th>status</th><th>started</th>"
        "<th>duration</th><th>mode</th><th>reason</th></tr>" + "".join(rows) + "</table>"
    )


def _logs_and_error(attempt: AttemptView, several: bool) -> str:
    r = attempt.record
    which = f" of attempt #{r.attempt}" if several else ""
    parts = []
    if r.error_message or r.error_type:
        parts.append(
            f"<div class='error'>error{which}: <b>{escape(r.error_type or 'Error')}</b>: "
            f"{escape(r.error_message or '')}</div>"
        )
        if r.traceback:
            parts.append(
                f"<details><summary>traceback</summary><pre class='traceback'>"
                f"{escape(r.traceback)}</pre></details>"
            )
    if attempt.tail:
        shown = len(attempt.tail)
        count = f"last {shown} of {attempt.lines} lines" if attempt.lines > shown else "all lines"
        text = "\n".join(f"[{e.stream}] {e.message}" for e in attempt.tail)
        parts.append(f"<div>log{which} ({count})</div><pre class='log'>{escape(text)}</pre>")
    return "\n".join(parts)


def _values(title: str, values: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(k))}</td><td class='mono'>{escape(_json(v))}</td></tr>"
        for k, v in sorted(values.items())
    )
    return f"<table class='{title}'><tr><th>{title}</th><th>value</th></tr>{rows}</table>"


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _size(size: int | None) -> str:
    """Bytes in decimal units, as file managers show them."""
    if size is None:
        return "–"
    value, unit = float(size), "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
