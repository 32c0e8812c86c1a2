"""Running one attempt of a stage, in each mode, and reporting back to the runner.

- ``direct``: the stage runs in a worker thread of the runner process.
- ``subprocess``: a child of the one child protocol (:mod:`stepkit.child`,
  :func:`stepkit.processes.run_child`) runs it: a spare started ahead
  (:mod:`stepkit.pipeline.spares`) or one started now, alike in all else; its stdout/stderr
  come back as log events in batches; past the timeout its whole process tree is killed.
  The object's ``finish`` (a step node storing its outputs) runs here, in the runner, once
  the child has reported.
- ``distributed``: :func:`stepkit.pipeline.invoke.run_in_worker` goes to any
  ``concurrent.futures.Executor`` the caller hands in.

Workers never touch the state store: everything they learn goes back to the runner, the
one writer, as an :class:`Outcome` or a list of :class:`~stepkit.state.records.LogBatch`.
"""

from __future__ import annotations

import functools
import pickle
import sys
import time
import traceback
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stepkit.errors import RemoteStageError, StageOutputError, StageTimeoutError
from stepkit.pipeline.context import StageContext
from stepkit.pipeline.invoke import (
    call_stage,
    finish_stage,
    keep_stage,
    lookup_stage,
    normalize_outputs,
)
from stepkit.pipeline.stage import Stage
from stepkit.processes import Child, run_child, start_child
from stepkit.processes import ProcessTable as ProcessTable  # the runner's, from here
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
    #: the stage's ``keep``, left for the runner to call once the completion is committed
    keep: Callable[[], None] | None = None

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
    """Turn a report from :func:`stepkit.pipeline.invoke.run_in_worker` into an Outcome, checking
    its outputs here (JSON-serializable, string keys)."""
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
        error = RemoteStageError(stage, report["type"], report["message"])
    return Outcome(
        started_at=started,
        finished_at=finished,
        error=error,
        traceback=report.get("traceback"),
        cpu_time=report.get("cpu_time"),
        peak_rss=report.get("peak_rss"),
    )


#: Modules a stage's child needs besides :mod:`stepkit.child`; they arrive compiled.
STAGE_MODULES = ("stepkit.pipeline.context", "stepkit.pipeline.invoke")


def warm_modules(stage: Stage) -> tuple[str, ...]:
    """The stepkit module a stage object's class comes from (a step node's), which its
    child can import before it knows its task; none for anything else: importing a user's
    module is the stage's own business, done when it runs."""
    target = stage.target
    if isinstance(target, types.FunctionType):
        return ()
    module = type(target).__module__
    return (module,) if module.startswith("stepkit.") else ()


def start_stage_child(warm: tuple[str, ...]) -> Child:
    """Start a stage's child (now, or ahead as a spare): this interpreter, this process's
    ``sys.path``, environment and folder, the stage modules, ``warm`` imported ahead."""
    return start_child("stage", modules=STAGE_MODULES, path=list(sys.path), warm=warm)


def stage_target(stage: Stage) -> dict[str, Any]:
    """How the child finds the stage: by module and qualified name, or pickled (objects,
    lambdas, nested functions)."""
    target = stage.target
    qualname = getattr(target, "__qualname__", None)
    if isinstance(target, types.FunctionType) and qualname and "<" not in qualname:
        found: dict[str, Any] = {"module": target.__module__, "qualname": qualname}
        if target.__module__ == "__main__":
            found["main_file"] = getattr(sys.modules["__main__"], "__file__", None)
        return found
    return {"pickled": pickle.dumps(target)}


class LogLines:
    """A stage's output as :class:`LogBatch` es of whole lines, sent to ``sink`` every
    ``LOG_BATCH_LINES`` lines or ``LOG_BATCH_SECONDS``."""

    def __init__(self, context: StageContext, sink: LogSink) -> None:
        self._context = context
        self._sink = sink
        self._partial = {"stdout": b"", "stderr": b""}
        self._pending: list[LogBatch] = []
        self._lines = 0
        self._flushed = time.monotonic()

    def write(self, stream: str, chunk: bytes) -> None:
        data = self._partial[stream] + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial[stream] = data
            return
        self._partial[stream] = data[cut + 1 :]
        self._add(stream, data[:cut])
        if self._lines >= LOG_BATCH_LINES or time.monotonic() - self._flushed >= LOG_BATCH_SECONDS:
            self._flush()

    def close(self) -> None:
        """Send what is left, a last line without its newline included."""
        for stream, rest in self._partial.items():
            if rest:
                self._add(stream, rest)
        self._partial = {"stdout": b"", "stderr": b""}
        self._flush()

    def _add(self, stream: str, data: bytes) -> None:
        lines = data.decode("utf-8", "replace").split("\n")
        context = self._context
        self._pending.append(
            LogBatch(context.run_id, context.stage, context.attempt, stream, time.time(), lines)
        )
        self._lines += len(lines)

    def _flush(self) -> None:
        if self._pending:
            self._sink(self._pending)
        self._pending = []
        self._lines = 0
        self._flushed = time.monotonic()


def run_subprocess(
    stage: Stage,
    context: StageContext,
    *,
    processes: ProcessTable,
    sink: LogSink,
    spare: Child | None = None,
) -> Outcome:
    """One attempt in a fresh child process (``spare``, started ahead by
    :func:`start_stage_child`, or one started now), its output streamed to ``sink`` in
    batches; none when the object's ``lookup`` finds its outputs (a cache hit: the spare
    is killed)."""
    started = time.time()
    try:
        found = lookup_stage(stage.target, context)
    except Exception as exc:  # the stage's failure (its cache), recorded as the child's
        _let_go(spare, processes)
        return failure(exc, started_at=started)
    if found is not None:
        _let_go(spare, processes)
        outputs, _ = normalize_outputs(stage.name, found)
        return Outcome(started_at=started, finished_at=time.time(), outputs=outputs, cached=True)
    logs = LogLines(context, sink)
    ran = run_child(
        {
            "kind": "stage",
            "handler": "stepkit.pipeline.invoke",
            "target": stage_target(stage),
            "context": context.to_payload(),
        },
        output=logs.write,
        timeout=stage.timeout,
        processes=processes,
        started=spare or start_stage_child(warm_modules(stage)),
    )
    logs.close()
    if ran.cancelled:
        return failure(KeyboardInterrupt("run cancelled"), started_at=started)
    if ran.timed_out:
        assert stage.timeout is not None
        return failure(
            StageTimeoutError(stage.name, stage.timeout, mode="subprocess"),
            started_at=started,
            finished_at=ran.finished_at,
        )
    if ran.report is None:
        message = f"the child process exited with status {ran.returncode} before reporting"
        return failure(
            RemoteStageError(stage.name, "ChildProcessError", message),
            started_at=started,
            finished_at=ran.finished_at,
        )
    report = {**ran.report, "cpu_time": ran.cpu_time, "peak_rss": ran.peak_rss}
    if not report.get("ok") or report.get("cached"):
        return outcome_from_report(stage.name, report)
    made = report.get("value")
    try:
        report["value"] = finish_stage(stage.target, context, made)
    except Exception as exc:  # the stage's failure (its outputs), recorded as the child's
        return failure(exc, started_at=started)
    report["finished_at"] = time.time()
    outcome = outcome_from_report(stage.name, report)
    if not outcome.ok or getattr(stage.target, "keep", None) is None:
        return outcome
    return replace(
        outcome, keep=functools.partial(keep_stage, stage.target, context, made, report["value"])
    )


def _let_go(spare: Child | None, processes: ProcessTable) -> None:
    """Kill the spare an attempt did not need (its outputs were found)."""
    if spare is not None:
        processes.discard(spare.proc)
        spare.discard()
