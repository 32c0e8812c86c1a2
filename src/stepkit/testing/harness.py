"""Run one script in a fresh child process and bring back what happened.

The child is the one every subprocess stage uses (:mod:`stepkit.child`, started by
:func:`stepkit.processes.run_child`), asked to run a script: in its own session, the test
folder as its working directory, no bytecode written. Of its stdout and stderr only the
first and last :data:`KEEP_BYTES` are kept, so a script that prints 100 MB costs the tester
nothing. At the deadline the whole process tree and group are killed; after the child
exits, any process it left behind in its group is reported and killed. Peak memory is the
child's own high-water mark, which it reports.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from stepkit.child import script_entry
from stepkit.processes import run_child, start_child
from stepkit.sandbox import GUARD_ENV, Sandbox

#: Bytes kept from the start and from the end of each of stdout and stderr.
KEEP_BYTES: Final = 32 * 1024


@dataclass(frozen=True, slots=True)
class Captured:
    """A bounded capture of one stream: its head, its tail, and how much was written."""

    head: bytes
    tail: bytes
    total_bytes: int

    @property
    def text(self) -> str:
        """What was written, with a marker where the middle was dropped."""
        dropped = self.total_bytes - len(self.head) - len(self.tail)
        middle = f"\n[… {dropped} bytes not kept …]\n".encode() if dropped > 0 else b""
        return (self.head + middle + self.tail).decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class ChildJob:
    """Everything the child needs, already resolved: it imports nothing from stepkit."""

    script: Path
    workdir: Path
    run: bool = True
    input_paths: dict[str, str] = field(default_factory=dict)
    output_paths: dict[str, str] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)
    job_args: dict[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ()  # the job arguments as flags, for a script run as a program
    source_dir: str | None = None  # the contract's: the package folder the script runs from
    sandbox: Sandbox | None = None  # None: no mapping, pip and proxies off through the env
    timeout: float = 300.0
    python: Path | None = None  # the step's own environment's interpreter; None: stepkit's


@dataclass(frozen=True, slots=True)
class ChildOutcome:
    """The child's own report (``None`` when it died before writing one) and the facts
    only the parent can see."""

    report: dict[str, Any] | None
    returncode: int
    timed_out: bool
    leftovers: tuple[str, ...]  # processes still alive after the child ended, as "pid name"
    killed: int  # processes killed at the deadline or as leftovers
    wall_seconds: float
    peak_rss_bytes: int | None  # the script process's own peak (None: it died first)
    stdout: Captured
    stderr: Captured


class _Capture:
    """One stream's head and rolling tail; never more than ~3 chunks held."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = KEEP_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail.append(chunk)
            self.tail_size += len(chunk)
            while self.tail_size - len(self.tail[0]) >= KEEP_BYTES:
                self.tail_size -= len(self.tail.popleft())

    def captured(self) -> Captured:
        tail = b"".join(self.tail)[-KEEP_BYTES:] if self.tail else b""
        return Captured(bytes(self.head), tail, self.total)


def run_script(job: ChildJob) -> ChildOutcome:
    """Run the script of ``job`` in a child; never raises for anything the script does."""
    captures = {"stdout": _Capture(), "stderr": _Capture()}
    env = {
        **os.environ,
        **GUARD_ENV,
        **job.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if job.sandbox is not None:  # the one place it may write temporary files
        env["TMPDIR"] = str(job.workdir)
    env.pop("PYTHONSTARTUP", None)
    wrap = job.sandbox.command() if job.sandbox else ()
    began = time.time()
    # started first: its interpreter comes up while the script is read and compiled here
    started = start_child(
        "script",
        cwd=str(job.workdir),
        env=env,
        wrap=wrap,
        python=str(job.python) if job.python is not None else None,
    )
    try:
        entry = script_entry(str(job.script), source_dir=_source_dir(job.script, job.source_dir))
    except BaseException:
        started.discard()
        raise
    ran = run_child(
        {
            "kind": "script",
            **entry,
            "run": job.run,
            "input_paths": job.input_paths,
            "output_paths": job.output_paths,
            "environ_vars": job.environ,
            "job_args": job.job_args,
            "argv": list(job.argv),
        },
        output=lambda stream, chunk: captures[stream].add(chunk),
        timeout=job.timeout,
        wrap=wrap,
        started=started,
    )
    return ChildOutcome(
        report=ran.report,
        returncode=ran.returncode,
        timed_out=ran.timed_out,
        leftovers=ran.leftovers,
        killed=ran.killed,
        wall_seconds=ran.finished_at - began,
        peak_rss_bytes=ran.report.get("peak_rss") if ran.report else None,
        stdout=captures["stdout"].captured(),
        stderr=captures["stderr"].captured(),
    )


def _source_dir(script: Path, source_dir: str | None) -> str | None:
    """The contract's ``source_dir`` as a folder holding the script: absolute, or relative
    to the first folder above the script where it names one of the script's parents."""
    if source_dir is None:
        return None
    if Path(source_dir).is_absolute():
        return source_dir
    for base in script.parents:
        folder = base / source_dir
        if folder in script.parents:
            return str(folder)
    return None
