"""Run one script in a fresh subprocess and bring back what happened.

The child (:mod:`stepkit.testing._child`, compiled once here) runs in its own session,
with stdin closed, the test folder as its working directory and no bytecode written. Its
stdout and stderr are read as they come and only the first and last :data:`KEEP_BYTES` are
kept, so a script that prints 100 MB costs the tester nothing. At the deadline the whole
process tree and group are killed; after the child exits, any process it left behind in
its group is reported and killed. Peak memory is the child's own high-water mark, which it reports.
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import os
import selectors
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any, Final

import psutil

from stepkit.processes import kill_processes

CHILD: Final = Path(__file__).with_name("_child.py")
#: What ``python -c`` runs: one marshalled file holds the child's code, compiled once by the
#: tester (so the child spends no milliseconds compiling its own source), and the job.
BOOT: Final = "import marshal,sys;code,job=marshal.load(open(sys.argv[1],'rb'));exec(code)"
#: Bytes kept from the start and from the end of each of stdout and stderr.
KEEP_BYTES: Final = 32 * 1024
_CHUNK: Final = 64 * 1024


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
    timeout: float = 300.0


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


def _drain(fd: int, capture: _Capture) -> bool:
    """Read what is there without blocking; False at end of file."""
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:  # nothing more for now (a leftover process holds the pipe)
            return True
        if not chunk:
            return False
        capture.add(chunk)


def _watch(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bool, _Capture, _Capture]:
    """Capture stdout/stderr until the child exits or the deadline passes (True: timed out).

    One thread, one ``select``: the child's exit wakes it through a pidfd where the system
    has them (Linux), else it looks every 10 ms.
    """
    assert proc.stdout is not None and proc.stderr is not None  # PIPE was asked for
    captures = {proc.stdout.fileno(): _Capture(), proc.stderr.fileno(): _Capture()}
    selector = selectors.DefaultSelector()
    for fd in captures:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    pidfd = os.pidfd_open(proc.pid) if hasattr(os, "pidfd_open") else None
    if pidfd is not None:
        selector.register(pidfd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            exited = False
            for key, _ in selector.select(remaining if pidfd is not None else min(remaining, 0.01)):
                if key.fd == pidfd:
                    exited = True
                elif not _drain(key.fd, captures[key.fd]):
                    selector.unregister(key.fd)
            if exited or (pidfd is None and proc.poll() is not None):
                break
    finally:
        selector.close()
        if pidfd is not None:
            os.close(pidfd)
    if not timed_out:
        for fd, capture in captures.items():
            _drain(fd, capture)
    return timed_out, captures[proc.stdout.fileno()], captures[proc.stderr.fileno()]


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of a process group."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # nobody left in the group
        return []
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):  # it ended while we looked
            continue
    return members


@functools.cache
def _child_code() -> CodeType:
    return compile(CHILD.read_bytes(), str(CHILD), "exec")


def run_child(job: ChildJob) -> ChildOutcome:
    """Run the child on ``job``; never raises for anything the script does."""
    job_file = job.workdir / ".stepkit-job"
    result_file = job.workdir / ".stepkit-result"
    payload = {
        "script": str(job.script),
        "module": job.script.stem,
        "run": job.run,
        "input_paths": job.input_paths,
        "output_paths": job.output_paths,
        "environ_vars": job.environ,
        "job_args": job.job_args,
    }
    job_file.write_bytes(marshal.dumps((_child_code(), payload)))
    env = {**os.environ, **job.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONSTARTUP", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-B", "-c", BOOT, str(job_file), str(result_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=job.workdir,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None  # PIPE was asked for
    timed_out, out, err = _watch(proc, job.timeout)
    killed = 0
    if timed_out:
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:  # it ended just now
            tree = []
        kill_processes(tree, proc.pid)
        killed = 1 + len(tree)
    _, status = os.waitpid(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    leftovers = [] if timed_out else _group_members(proc.pid)
    leftover_names = tuple(f"{p.pid} {_name(p)}" for p in leftovers)
    if leftovers:
        killed += kill_processes(leftovers, proc.pid)
    if timed_out or leftovers:  # what the killed processes wrote before they died
        for fd, capture in ((proc.stdout.fileno(), out), (proc.stderr.fileno(), err)):
            _drain(fd, capture)
    proc.stdout.close()
    proc.stderr.close()
    report = None
    if result_file.exists():
        with contextlib.suppress(EOFError, ValueError, TypeError):  # cut short by a kill
            report = marshal.loads(result_file.read_bytes())
        result_file.unlink()
    job_file.unlink(missing_ok=True)
    return ChildOutcome(
        report=report,
        returncode=proc.returncode,
        timed_out=timed_out,
        leftovers=leftover_names,
        killed=killed,
        wall_seconds=wall,
        peak_rss_bytes=report.get("peak_rss_bytes") if report else None,
        stdout=out.captured(),
        stderr=err.captured(),
    )


def _name(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:  # it is gone already; the pid is all we have
        return "?"
