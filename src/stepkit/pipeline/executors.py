"""Running one attempt of a stage, in each mode, and reporting back to the runner.

- ``direct``: the stage runs in a worker thread of the runner process.
- ``subprocess``: ``python -m stepkit.pipeline.child`` runs it; its stdout/stderr come back
  as log events in batches; past the timeout its whole process tree is killed (psutil).
- ``distributed``: :func:`stepkit.pipeline.child.run_in_worker` goes to any
  ``concurrent.futures.Executor`` the caller hands in.

Workers never touch the state store: everything they learn goes back to the runner, the
one writer, as an :class:`Outcome` or a list of :class:`~stepkit.state.records.LogBatch`.
"""

from __future__ import annotations

import functools
import marshal
import os
import pickle
import selectors
import subprocess
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stepkit.errors import RemoteStageError, StageOutputError, StageTimeoutError
from stepkit.pipeline.child import BOOTSTRAP
from stepkit.pipeline.context import StageContext
from stepkit.pipeline.invoke import call_stage, normalize_outputs
from stepkit.pipeline.stage import Stage
from stepkit.processes import kill_tree
from stepkit.state.records import LogBatch

#: Lines per log batch sent to the runner (and so per executemany in the store).
LOG_BATCH_LINES = 50_000
#: Longest a line waits in a worker before it is sent on.
LOG_BATCH_SECONDS = 0.25

LogSink = Callable[[Sequence[LogBatch]], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did, as the runner records it."""

    started_at: float
    finished_at: float
    outputs: Mapping[str, Any] | None = None
    cached: bool = False
    error: BaseException | None = None
    traceback: str | None = None
    cpu_time: float | None = None
    peak_rss: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def failure(
    error: BaseException, *, started_at: float, finished_at: float | None = None
) -> Outcome:
    return Outcome(
        started_at=started_at,
        finished_at=time.time() if finished_at is None else finished_at,
        error=error,
        traceback="".join(traceback.format_exception(error)),
    )


def run_direct(stage: Stage, context: StageContext) -> Outcome:
    """One attempt in this thread (a runner worker thread)."""
    started = time.time()
    cpu = time.thread_time()
    try:
        outputs, cached = normalize_outputs(stage.name, call_stage(stage.target, context))
    except Exception as exc:  # the stage's failure is recorded, not handled here
        return Outcome(
            started_at=started,
            finished_at=time.time(),
            error=exc,
            traceback=traceback.format_exc(),
            cpu_time=time.thread_time() - cpu,
        )
    return Outcome(
        started_at=started,
        finished_at=time.time(),
        outputs=outputs,
        cached=cached,
        cpu_time=time.thread_time() - cpu,
    )


def outcome_from_report(stage: str, report: Mapping[str, Any]) -> Outcome:
    """Turn a report from :func:`stepkit.pipeline.child.run_in_worker` into an Outcome,
    checking its outputs here (JSON-serializable, string keys)."""
    started, finished = report["started_at"], report["finished_at"]
    if report.get("ok"):
        try:
            outputs, _ = normalize_outputs(stage, report.get("value"))
        except StageOutputError as exc:
            return failure(exc, started_at=started, finished_at=finished)
        return Outcome(
            started_at=started,
            finished_at=finished,
            outputs=outputs,
            cached=bool(report.get("cached")),
            cpu_time=report.get("cpu_time"),
            peak_rss=report.get("peak_rss"),
        )
    error = report.get("error")
    if not isinstance(error, BaseException):
        error = RemoteStageError(stage, report["error_type"], report["error_message"])
    return Outcome(
        started_at=started,
        finished_at=finished,
        error=error,
        traceback=report.get("traceback"),
        cpu_time=report.get("cpu_time"),
        peak_rss=report.get("peak_rss"),
    )


#: Modules the child receives compiled (in this order), so it reads none of stepkit's files.
CHILD_MODULES = ("stepkit.pipeline.context", "stepkit.pipeline.invoke", "stepkit.pipeline.child")


@functools.cache
def _child_modules() -> list[tuple[str, str, bytes]]:
    modules = []
    for name in CHILD_MODULES:
        path = sys.modules[name].__file__
        assert path is not None
        with open(path, encoding="utf-8") as handle:
            code = compile(handle.read(), path, "exec", dont_inherit=True)
        modules.append((name, path, marshal.dumps(code)))
    return modules


@functools.cache
def _site_flag() -> tuple[str, ...]:
    """``-S`` (skip ``site``: the path comes with the request) unless an import hook that
    only ``site`` installs is in use — an editable install's finder, say."""
    for finder in sys.meta_path:
        kind = type(finder) if not isinstance(finder, type) else finder
        if kind.__module__.startswith("__editable__") or "editable" in kind.__name__.lower():
            return ()
    return ("-S",)


def stage_request(stage: Stage, context: StageContext) -> dict[str, Any]:
    """What the child needs: its modules, the stage by module and name (pickled if an
    object), the context as plain values."""
    target = stage.target
    request: dict[str, Any] = {
        "path": list(sys.path),
        "modules": _child_modules(),
        "context": context.to_payload(),
    }
    qualname = getattr(target, "__qualname__", None)
    if isinstance(target, types.FunctionType) and qualname and "<" not in qualname:
        request["module"] = target.__module__
        request["qualname"] = qualname
        if target.__module__ == "__main__":
            request["main_file"] = getattr(sys.modules["__main__"], "__file__", None)
    else:
        request["pickled"] = pickle.dumps(target)
    return request


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


def run_subprocess(
    stage: Stage,
    context: StageContext,
    *,
    processes: ProcessTable,
    sink: LogSink,
) -> Outcome:
    """One attempt in a fresh child process, its output streamed to ``sink`` in batches."""
    started = time.time()
    request = stage_request(stage, context)
    report_read, report_write = os.pipe()
    request["fd"] = report_write
    try:
        proc = subprocess.Popen(
            [sys.executable, *_site_flag(), "-c", BOOTSTRAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(report_write,),
            start_new_session=True,  # its own process group: the tree can be killed as one
        )
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    if not processes.add(proc):
        os.close(report_read)
        return failure(KeyboardInterrupt("run cancelled"), started_at=started)
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(marshal.dumps(request))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the child died at start; its exit status and stderr say why
        deadline = None if stage.timeout is None else started + stage.timeout
        timed_out, report_bytes = _pump(
            proc, context, report_fd=report_read, sink=sink, deadline=deadline
        )
        # wait4: the child's own CPU time and peak RSS, measured by the kernel.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        processes.discard(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    finished = time.time()
    if timed_out:
        assert stage.timeout is not None
        return failure(
            StageTimeoutError(stage.name, stage.timeout, mode="subprocess"),
            started_at=started,
            finished_at=finished,
        )
    if not report_bytes:
        message = f"the child process exited with status {proc.returncode} before reporting"
        return failure(
            RemoteStageError(stage.name, "ChildProcessError", message),
            started_at=started,
            finished_at=finished,
        )
    kind, payload = report_bytes[:1], report_bytes[1:]
    report = marshal.loads(payload) if kind == b"M" else pickle.loads(payload)
    report["cpu_time"] = usage.ru_utime + usage.ru_stime
    report["peak_rss"] = usage.ru_maxrss * 1024  # kilobytes on Linux
    return outcome_from_report(stage.name, report)


def _pump(
    proc: subprocess.Popen[bytes],
    context: StageContext,
    *,
    report_fd: int,
    sink: LogSink,
    deadline: float | None,
) -> tuple[bool, bytes]:
    """Read stdout, stderr and the report pipe until they close; every read of output
    becomes one :class:`LogBatch` of whole lines, sent on every ``LOG_BATCH_LINES`` lines
    or ``LOG_BATCH_SECONDS``. Returns (timed out? — the tree was then killed, the report).
    """
    assert proc.stdout is not None and proc.stderr is not None
    run_id, stage, attempt = context.run_id, context.stage, context.attempt
    streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    partial = {fd: b"" for fd in streams}
    report = bytearray()
    pending: list[LogBatch] = []
    pending_lines = 0
    last_flush = time.monotonic()
    timed_out = False

    def add(fd: int, data: bytes) -> int:
        lines = data.decode("utf-8", "replace").split("\n")
        pending.append(LogBatch(run_id, stage, attempt, streams[fd], time.time(), lines))
        return len(lines)

    with selectors.DefaultSelector() as selector:
        for fd in [*streams, report_fd]:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            wait = None if deadline is None else max(0.0, deadline - time.time())
            ready = selector.select(wait)
            if deadline is not None and time.time() >= deadline:
                kill_tree(proc.pid)
                timed_out = True
                deadline = None  # keep draining what the pipes still hold
                continue
            for key, _ in ready:
                fd = int(key.fd)
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    selector.unregister(fd)
                    if fd == report_fd:
                        os.close(fd)
                    elif partial[fd]:  # a last line without its newline
                        pending_lines += add(fd, partial[fd])
                        partial[fd] = b""
                elif fd == report_fd:
                    report += chunk
                else:
                    data = partial[fd] + chunk
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        partial[fd] = data
                    else:
                        partial[fd] = data[cut + 1 :]
                        pending_lines += add(fd, data[:cut])
            if pending and (
                pending_lines >= LOG_BATCH_LINES
                or time.monotonic() - last_flush >= LOG_BATCH_SECONDS
            ):
                sink(pending)
                pending = []
                pending_lines = 0
                last_flush = time.monotonic()
    if pending:
        sink(pending)
    return (True, b"") if timed_out else (False, bytes(report))
