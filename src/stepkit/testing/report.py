"""Results as JUnit XML, the format CI systems read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from stepkit.testing.checks import ScriptResult, Status


def junit_xml(results: Sequence[ScriptResult], *, suite: str = "stepkit test all") -> str:
    """One ``testsuite``; a ``testcase`` per script with its failure, error or skip."""
    counts = {s: sum(r.status is s for r in results) for s in Status}
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(counts[Status.FAIL]),
        errors=str(counts[Status.ERROR]),
        skipped=str(counts[Status.SKIP]),
        time=f"{sum(r.wall_seconds for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            root, "testcase", classname="stepkit.scripts", name=r.name, time=f"{r.wall_seconds:.3f}"
        )
        if r.status is Status.PASS:
            continue
        tag = {Status.FAIL: "failure", Status.ERROR: "error", Status.SKIP: "skipped"}[r.status]
        element = ET.SubElement(case, tag, message=r.reason)
        if r.exception is not None:
            element.text = r.exception.traceback
        for name, captured in (("system-out", r.stdout), ("system-err", r.stderr)):
            if captured is not None and captured.total_bytes:
                ET.SubElement(case, name).text = captured.text
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
