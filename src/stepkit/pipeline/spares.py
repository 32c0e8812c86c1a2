"""Spare stage children: started ahead, so that a stage that becomes ready is handed to a
child that has started up already, and a child's start-up (a fresh interpreter, stepkit's
modules, the step node's imports: ~30 ms) is not part of the hand-off between stages.

A spare is an ordinary stage child (:func:`stepkit.pipeline.executors.start_stage_child`)
that has been sent the start of its request and waits for its task (:mod:`stepkit.child`):
it has run nothing of any stage, gets one task, runs it and exits, as a child started at
the stage's start would. It is used only if this process's environment, working folder and
``sys.path`` are still what it was started with; else it is killed and the stage gets a
child started now. A stage's own environment or sandbox is unchanged: those children are
started by the stage's child, when it runs, as before.

Spares are started by one thread of their own, which lives until :meth:`Spares.close`: the
kernel's ``PR_SET_PDEATHSIG``, which the child asks for, follows the *thread* that started
it, so every child started from here (spare, or a stage handed one) is SIGKILLed if the
runner dies, and none outlives the run's end. Each is in the run's process table from its
start, so a cancelled run kills the idle spares with its stages.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from stepkit.observability import get_logger
from stepkit.processes import Child, ProcessTable


@dataclass(frozen=True, slots=True)
class _Spare:
    child: Child
    environ: dict[str, str]  # what it was started with: it fits only a stage that has them
    cwd: str
    path: tuple[str, ...]

    def fits(self) -> bool:
        return (
            self.child.proc.poll() is None
            and self.path == tuple(sys.path)
            and self.cwd == os.getcwd()
            and self.environ == dict(os.environ)
        )


class Spares:
    """The idle spare children of one run, kept at the count the runner asks for."""

    def __init__(
        self,
        start: Callable[[tuple[str, ...]], Child],
        *,
        warm: tuple[str, ...],
        processes: ProcessTable,
    ) -> None:
        self.warm = warm  # what each spare imports ahead; it fits only stages that want it
        self._start = start
        self._processes = processes
        self._idle: list[_Spare] = []
        self._wanted = 0
        self._halted = False  # no more spares this run: one could not be started
        self._closed = False
        self._starting = 0  # spares being started now
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def want(self, count: int) -> None:
        """Keep ``count`` idle spares from now on (more are killed, fewer are started)."""
        with self._changed:
            if self._closed or self._halted:
                return
            self._wanted = count
            if self._thread is None and count > 0:
                self._thread = threading.Thread(
                    target=self._keep, name="stepkit-spares", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def take(self, warm: tuple[str, ...]) -> Child | None:
        """An idle spare for a stage whose child imports ``warm`` ahead, if one fits; the
        runner then says how many it wants now (:meth:`want`)."""
        if warm != self.warm:
            return None
        while True:
            with self._changed:
                while not self._idle and self._starting:
                    self._changed.wait()  # one on its way: sooner than a child started now
                if not self._idle:
                    return None
                spare = self._idle.pop(0)  # the oldest: the likeliest to have started up
            if spare.fits():
                return spare.child
            self._drop(spare)

    def close(self) -> None:
        """Kill the idle spares and end the thread. Call it once the run's stage children
        are gone: any it started dies with the thread."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for spare in idle:
            self._drop(spare)
        if self._thread is not None:
            self._thread.join()

    def _keep(self) -> None:
        """The spares' thread: start or kill spares until their count is the one wanted,
        then wait for a change. It ends only when closed: it must outlive its children."""
        while True:
            with self._changed:
                while not self._closed and (self._halted or len(self._idle) == self._wanted):
                    self._changed.wait()
                if self._closed:
                    return
                extra = self._idle.pop() if len(self._idle) > self._wanted else None
            if extra is not None:
                self._drop(extra)
            else:
                self._add()

    def _add(self) -> None:
        """Start one spare (a stage that wants one meanwhile waits for it)."""
        with self._changed:
            self._starting += 1
        spare = None
        try:
            spare = self._started()
        finally:
            with self._changed:
                self._starting -= 1
                if spare is not None and not self._closed:
                    self._idle.append(spare)
                    spare = None
                self._changed.notify_all()
        if spare is not None:  # closed meanwhile
            self._drop(spare)

    def _started(self) -> _Spare | None:
        """A new spare, in the run's process table; None if none can be started, and then
        no more are this run (the stages start their own children, as without spares)."""
        environ, cwd, path = dict(os.environ), os.getcwd(), tuple(sys.path)
        try:
            child = self._start(self.warm)
        except OSError as exc:  # out of processes or files: spares are only a head start
            get_logger("stepkit.pipeline").warning("spare_child_failed", error=str(exc))
            self._halt()
            return None
        spare = _Spare(child, environ, cwd, path)
        if not self._processes.add(child.proc):  # the run is stopping: it was killed
            self._drop(spare)
            self._halt()
            return None
        return spare

    def _halt(self) -> None:
        with self._changed:
            self._halted = True

    def _drop(self, spare: _Spare) -> None:
        self._processes.discard(spare.child.proc)
        spare.child.discard()
