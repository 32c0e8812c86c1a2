"""What a test found: statuses, checks with reasons, and the result of a script test.

``PASS`` and ``FAIL`` are about the script; ``ERROR`` means the test itself could not be
carried out (no script file, a required env var nobody set, a ``--data`` folder missing an
input); ``SKIP`` is for a pipeline step that could not run because of an earlier one.
:func:`judge` turns what the child reported into the list of checks, in the order they
were made, stopping at the first that failed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepkit.testing.harness import Captured, ChildOutcome

#: A script that writes more than this to stdout or stderr fails the ``logs`` check.
LOG_LIMIT_BYTES = 10 * 1024 * 1024


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Check:
    """One thing checked: ``import``, ``main``, ``signature``, ``run``, ``outputs``, …"""

    name: str
    status: Status
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    type: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """The result of testing one script (one step, or one node of a pipeline)."""

    name: str
    status: Status
    checks: tuple[Check, ...]
    script: Path | None = None
    exit_code: int | None = None
    exception: ExceptionInfo | None = None
    stdout: Captured | None = None
    stderr: Captured | None = None
    wall_seconds: float = 0.0
    peak_rss_bytes: int | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # logical name -> where it came from
    outputs: dict[str, Path] = field(default_factory=dict)
    temp_dir: Path | None = None  # kept (failed test, or --keep); None once removed

    @property
    def ok(self) -> bool:
        return self.status is Status.PASS

    @property
    def reason(self) -> str:
        """Why the result is not PASS: the first check that did not pass."""
        return next((c.reason for c in self.checks if c.status is not Status.PASS), "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason,
            "script": str(self.script) if self.script else None,
            "checks": [
                {"name": c.name, "status": c.status.value, "reason": c.reason} for c in self.checks
            ],
            "exit_code": self.exit_code,
            "exception": (
                {
                    "type": self.exception.type,
                    "message": self.exception.message,
                    "traceback": self.exception.traceback,
                }
                if self.exception
                else None
            ),
            "stdout": _stream_json(self.stdout),
            "stderr": _stream_json(self.stderr),
            "wall_seconds": round(self.wall_seconds, 4),
            "peak_rss_bytes": self.peak_rss_bytes,
            "inputs": dict(self.inputs),
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "temp_dir": str(self.temp_dir) if self.temp_dir else None,
        }


def _stream_json(captured: Captured | None) -> dict[str, Any] | None:
    if captured is None:
        return None
    return {"total_bytes": captured.total_bytes, "text": captured.text}


def status_of(checks: list[Check]) -> Status:
    """The worst status among the checks (ERROR > FAIL > SKIP > PASS)."""
    statuses = {c.status for c in checks}
    for status in (Status.ERROR, Status.FAIL, Status.SKIP):
        if status in statuses:
            return status
    return Status.PASS


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            import signal

            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def judge(
    outcome: ChildOutcome,
    *,
    timeout: float,
    outputs: dict[str, Path],
    ran: bool,
    missing: tuple[str, ...] = (),
    sandboxed: bool = False,
) -> tuple[list[Check], ExceptionInfo | None]:
    """The checks a child's outcome passes or fails, and the exception it reported."""
    report = outcome.report
    exception = (
        ExceptionInfo(report["type"], report["message"], report["traceback"])
        if report and "type" in report
        else None
    )
    checks: list[Check] = []
    if outcome.timed_out:
        stage = report["phase"] if report else "import or run"
        checks.append(
            Check(
                "timeout",
                Status.FAIL,
                f"timed out after {timeout:g} s (during {stage}); "
                f"killed {outcome.killed} process(es)",
            )
        )
        return checks, exception
    if report is None:
        checks.append(
            Check(
                "run",
                Status.FAIL,
                f"the script's process {_describe_exit(outcome.returncode)} before reporting",
            )
        )
        return checks, exception
    stage = report["phase"]
    steps = ("run",) if report.get("entry") == "program" else ("import", "main", "signature", "run")
    for name in steps:
        if name == "run" and not ran:
            break
        if stage != name:
            checks.append(Check(name, Status.PASS))
            continue
        if name == "main":
            reason = "the script has no callable main"
        elif name == "signature":
            reason = exception.message if exception else "main has the wrong signature"
        elif report.get("exit_code") not in (None, 0):
            when = "while being imported" if name == "import" else ""
            reason = f"called sys.exit({report['exit_code']}) {when}".rstrip()
        elif exception:
            first = f"{exception.type}: {exception.message}".splitlines()[0]
            what = {"import": "import failed", "run": "main raised"}.get(name, "raised")
            if report.get("entry") == "program":
                what = "the script raised"
            reason = f"{what} {first}" + _missing_hint(exception, missing)
            reason += _sandbox_hint(first, exception, outcome.stderr.text, sandboxed=sandboxed)
        else:
            reason = f"the script's process {_describe_exit(outcome.returncode)}"
        checks.append(Check(name, Status.FAIL, reason))
        return checks, exception
    if outcome.leftovers:
        checks.append(
            Check(
                "processes",
                Status.FAIL,
                f"left {len(outcome.leftovers)} process(es) running after main returned "
                f"({'; '.join(outcome.leftovers)}); killed them",
            )
        )
    for stream_name, captured in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        if captured.total_bytes > LOG_LIMIT_BYTES:
            checks.append(
                Check(
                    "logs",
                    Status.FAIL,
                    f"wrote {captured.total_bytes} bytes to {stream_name} "
                    f"(limit {LOG_LIMIT_BYTES}); kept the first and last "
                    f"{len(captured.head)} and {len(captured.tail)}",
                )
            )
    if ran:
        checks.append(check_outputs(outputs))
    return checks, exception


def check_outputs(outputs: dict[str, Path]) -> Check:
    """Every output the contract promises exists and is not empty."""
    problems = []
    for logical, path in outputs.items():
        if not path.exists():
            problems.append(f"{logical!r} was not written ({path})")
        elif path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
            problems.append(f"{logical!r} is an empty folder ({path})")
        elif path.is_file() and path.stat().st_size == 0:
            problems.append(f"{logical!r} is an empty file ({path})")
    if problems:
        return Check("outputs", Status.FAIL, "output " + "; output ".join(problems))
    return Check("outputs", Status.PASS)


def _missing_hint(exception: ExceptionInfo, missing: tuple[str, ...]) -> str:
    """Why an attribute error on ``job_args`` happened: a declared job argument had no
    value; and how to give one."""
    named = [m for m in missing if f"'{m.split(' ')[0]}'" in exception.message]
    if exception.type != "AttributeError" or not named:
        return ""
    name = named[0].split(" ")[0]
    return (
        f" (stepkit had no value for job argument {named[0]}: pass --arg {name}=… "
        "or set it under [test] args in stepkit.toml)"
    )


def _sandbox_hint(first: str, exception: ExceptionInfo, stderr: str, *, sandboxed: bool) -> str:
    """Why a script that tried to install a package or reach a service failed."""
    from stepkit.sandbox import hint

    text = f"{exception.message}\n{exception.traceback}\n{stderr[-4000:]}"
    return hint(first, text, sandboxed=sandboxed)
