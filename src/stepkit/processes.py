"""The parent side of the one child-process protocol: start the child, capture its output,
bring back its report, kill its whole tree — for pipeline stages and tests alike.

:func:`start_child` starts ``python -c BOOTSTRAP`` (:mod:`stepkit.child`) in its own
session and writes the start of the request on its stdin; :func:`run_child` writes the task
(starting the child first unless it is handed one started earlier: a spare,
:mod:`stepkit.pipeline.spares`) and reads stdout, stderr and the report pipe in one loop
until the child exits or the deadline passes. Output goes to a callback chunk by chunk (a
stage turns it into log batches, a test keeps a head and a tail). At the deadline the tree
and the group are killed (SIGKILL, which nothing can ignore); after the child exits, any
process it left behind in its group is reported and killed.

The child dies with its parent: the request names the parent's pid, and the child asks
the kernel for a SIGKILL when that process dies (:func:`stepkit.child.die_with_parent`),
so a runner killed with SIGKILL leaves no stage running. The processes the child itself
started stay in its group, where a resume (:mod:`stepkit.pipeline.orphans`) finds them.
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal  # the child protocol's request format (see stepkit.child)
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stepkit import child

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    import psutil

#: Called with ``"stdout"`` or ``"stderr"`` and each chunk the child wrote there.
OutputSink = Callable[[str, bytes], None]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ChildRun:
    """The child's own report (None when it died before writing one) and what only the
    parent can see."""

    report: dict[str, Any] | None
    returncode: int
    timed_out: bool
    cancelled: bool  # the run was stopping: the child was killed at start
    leftovers: tuple[str, ...]  # processes still alive after the child ended, as "pid command"
    killed: int  # processes killed at the deadline or as leftovers
    started_at: float
    finished_at: float
    cpu_time: float  # user + system, measured by the kernel (wait4)
    peak_rss: int | None  # the child's own high-water mark, else wait4's


class ProcessTable:
    """The child processes running now, so that a cancelled run can kill them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self.closed = False

    def add(self, proc: subprocess.Popen[bytes]) -> bool:
        """Register a child; False (and the child killed) if the run is already stopping."""
        with self._lock:
            if not self.closed:
                self._procs[proc.pid] = proc
                return True
        kill_tree(proc.pid)
        return False

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)

    def kill_all(self) -> None:
        with self._lock:
            self.closed = True
            procs = list(self._procs.values())
        for proc in procs:
            kill_tree(proc.pid)


@dataclass(frozen=True, slots=True)
class Child:
    """A child started and sent the start of its request, waiting for its task."""

    proc: subprocess.Popen[bytes]
    report_fd: int  # the read end of the pipe its report comes on

    def discard(self) -> None:
        """Kill and reap a child that will get no task. Nothing but stepkit's start-up ran
        in it, so its group is all there is to kill."""
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a write the child never read
                    pipe.close()
        os.close(self.report_fd)


def start_child(
    kind: str,
    *,
    modules: tuple[str, ...] = (),
    path: list[str] | None = None,
    warm: tuple[str, ...] = (),
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    wrap: Sequence[str] = (),
    python: str | None = None,
) -> Child:
    """Start a child for a request of ``kind`` and send it the start of the request (see
    :func:`run_child` for the parameters; ``warm``: stepkit modules it imports before its
    task comes). It then waits for its task, which it gets from :func:`run_child`."""
    report_read, report_write = os.pipe()
    start = {
        "path": path,
        "modules": [
            child.source(name) if _foreign(python) else child.compiled(name)
            for name in ("stepkit.child", *modules)
        ],
        "fd": report_write,
        "warm": list(warm),
    }
    try:
        proc = subprocess.Popen(
            [*wrap, *child.command(kind, python)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(report_write,),
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,  # its own process group: the tree can be killed as one
        )
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    assert proc.stdin is not None
    # The child asks to die with us and checks that we are still there; a wrapped one
    # is killed with us by the sandbox (bwrap --die-with-parent), so it need not ask.
    start["parent"] = None if wrap else os.getpid()
    message = marshal.dumps(start)
    _room_for(proc.stdin.fileno(), len(message))
    try:
        proc.stdin.write(message)
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # the child died at start; its exit status and stderr say why
    return Child(proc, report_read)


def _room_for(fd: int, size: int) -> None:
    """Grow a pipe to hold ``size`` bytes where the platform can (Linux): the start of a
    request (stepkit's modules, compiled: ~60 KB) is then written at once, not as the child
    reads it, once its interpreter is up — what a spare started ahead must not wait for."""
    setting = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setting is None or size <= fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ):
        return
    with contextlib.suppress(OSError):  # above the system's pipe-max-size: the write waits
        fcntl.fcntl(fd, setting, size)


def run_child(
    request: Mapping[str, Any],
    *,
    modules: tuple[str, ...] = (),
    path: list[str] | None = None,
    output: OutputSink,
    timeout: float | None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    processes: ProcessTable | None = None,
    wrap: Sequence[str] = (),
    python: str | None = None,
    started: Child | None = None,
) -> ChildRun:
    """Run one request (its task) in a fresh child; never raises for anything the child does.

    ``modules``: stepkit modules the child needs besides :mod:`stepkit.child`, sent compiled
    and installed in this order after it.
    ``path``: the child's ``sys.path`` (None: the interpreter's own, as ``python script.py``).
    ``wrap``: a command the child runs under (a sandbox's, :mod:`stepkit.sandbox`).
    ``python``: the interpreter the child runs on (a step's environment; default: this
    one). stepkit's modules go compiled when it is this interpreter behind a virtual
    environment's link (the same bytecode), else as source, which any Python from 3.8 on
    compiles.
    ``started``: a child :func:`start_child` started earlier for this request, which has
    had no task (a spare); it was started with its own settings, and these are not used.
    """
    began = time.time()
    ready = started or start_child(
        request["kind"], modules=modules, path=path, cwd=cwd, env=env, wrap=wrap, python=python
    )
    proc, report_read = ready.proc, ready.report_fd
    cancelled = processes is not None and not processes.add(proc)
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(marshal.dumps(dict(request)))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the child died at start (or was killed); its exit status says why
        deadline = None if timeout is None else time.monotonic() + timeout
        fds = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
        timed_out, killed, report_bytes, waited = _capture(
            proc.pid, fds, report_fd=report_read, output=output, deadline=deadline
        )
        if timed_out and wrap:
            killed = max(0, killed - 1)  # the sandbox's own process is not the child's
        _, status, usage = waited if waited is not None else os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        leftovers = [] if timed_out else group_members(proc.pid)
        if leftovers:
            killed += kill_processes(leftovers, proc.pid)
            _drain([*fds], fds, output)  # what the leftovers wrote before they died
    finally:
        os.close(report_read)
        if processes is not None:
            processes.discard(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    report = None
    if report_bytes and not timed_out:
        with contextlib.suppress(EOFError, ValueError, TypeError):  # cut short by a kill
            report = child.decode(report_bytes)
    peak = report.get("peak_rss") if report else None
    return ChildRun(
        report=report,
        returncode=proc.returncode,
        timed_out=timed_out,
        cancelled=cancelled,
        leftovers=tuple(f"{p.pid} {_command(p)}" for p in leftovers),
        killed=killed,
        started_at=began,
        finished_at=time.time(),
        cpu_time=usage.ru_utime + usage.ru_stime,
        peak_rss=peak if peak is not None else usage.ru_maxrss * 1024,  # kB on Linux
    )


def _foreign(python: str | None) -> bool:
    """Whether ``python`` is another interpreter than this one (whose bytecode may differ)."""
    if python is None:
        return False
    own = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(python) != os.path.realpath(own)


Waited = tuple[int, int, Any]  # what os.wait4 returns: pid, status, rusage


def _capture(
    pid: int,
    fds: Mapping[int, str],
    *,
    report_fd: int,
    output: OutputSink,
    deadline: float | None,
) -> tuple[bool, int, bytes, Waited | None]:
    """The one output-capture loop: stdout, stderr and the report pipe read in one
    ``select`` until the child exits (a pidfd wakes it; without one it looks every 10 ms)
    or the deadline passes, then what the pipes still hold. A process the child left
    behind holding a pipe does not keep the loop waiting.

    Returns (timed out?, processes killed, the report's bytes, the wait4 result if the
    fallback already reaped the child).
    """
    report = bytearray()
    sinks = {**fds, report_fd: "report"}

    def take(stream: str, chunk: bytes) -> None:
        if stream == "report":
            report.extend(chunk)
        else:
            output(stream, chunk)

    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    waited: Waited | None = None
    timed_out = False
    killed = 0
    with selectors.DefaultSelector() as selector:
        for fd in sinks:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ)
        try:
            while True:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    timed_out = True
                    killed = kill_tree(pid)
                    break
                if pidfd is None:
                    wait = 0.01 if wait is None else min(wait, 0.01)
                exited = False
                for key, _ in selector.select(wait):
                    fd = int(key.fd)
                    if fd == pidfd:
                        exited = True
                    elif not _read(fd, sinks[fd], take):
                        selector.unregister(fd)
                if pidfd is None:
                    found = os.wait4(pid, os.WNOHANG)
                    if found[0] != 0:
                        waited, exited = found, True
                if exited:
                    break
        finally:
            if pidfd is not None:
                selector.unregister(pidfd)
                os.close(pidfd)
        _drain([int(key.fd) for key in selector.get_map().values()], sinks, take)
    return timed_out, killed, bytes(report), waited


def _read(fd: int, stream: str, take: OutputSink) -> bool:
    """Read what the pipe holds now; False at end of file."""
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:  # nothing more for now
            return True
        if not chunk:
            return False
        take(stream, chunk)


def _drain(fds: list[int], streams: Mapping[int, str], take: OutputSink) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):  # closed already
            _read(fd, streams[fd], take)


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of a process group."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # nobody left in the group
        return []
    import psutil  # only when someone is left: a stage that starts a child stays light

    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):  # it ended while we looked
            continue
    return members


def _command(proc: psutil.Process) -> str:
    import psutil

    try:
        return " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:  # it is gone already; the pid is all we have
        return "?"


def kill_processes(procs: list[psutil.Process], pgid: int | None = None) -> int:
    """Kill ``procs`` and, when given, the process group ``pgid``; returns how many went."""
    import psutil

    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(pgid, signal.SIGKILL)
    killed = 0
    for proc in procs:
        try:
            proc.kill()
            killed += 1
        except psutil.NoSuchProcess:  # killed with the group: it still went
            killed += 1
        except psutil.Error:  # not ours to kill (it changed user): leave it
            continue
    wait_dead(procs)
    return killed


def kill_tree(pid: int) -> int:
    """Kill a process, every descendant, and the group it leads; returns how many. The
    root is left for its parent (the caller) to reap."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        procs = []
    return kill_processes(procs, pid)


def wait_dead(procs: list[psutil.Process], timeout: float = 2.0) -> None:
    """Wait (briefly) until killed processes are gone or zombies nobody reaped yet."""
    import psutil

    deadline = time.monotonic() + timeout
    for proc in procs:
        while time.monotonic() < deadline:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.005)


# --- pool workers ------------------------------------------------------------------------


def worker_pool(max_workers: int | None) -> ProcessPoolExecutor:
    """A pool of reused worker processes (the ``process`` executor) whose workers die with
    the process that made the pool: a runner killed with SIGKILL leaves none behind."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=max_workers, initializer=die_with, initargs=(os.getpid(),)
    )


def die_with(runner: int) -> None:
    """A pool worker's initializer: the kernel sends it SIGKILL when the process that
    started it dies (the runner, or a fork server that ends with the runner), and it exits
    at once if ``runner`` is gone already (it died before the signal was asked for).

    A worker lives long, so ``ctypes``' start-up is nothing here; the pool starts its
    workers from the thread that runs the run, which outlives them (the signal follows the
    thread that forked, not the process)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    try:
        os.kill(runner, 0)
    except ProcessLookupError:
        os._exit(70)
    except PermissionError:  # alive, and another user's (a reused pid): ours is gone
        os._exit(70)
