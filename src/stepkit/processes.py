"""Killing a child's whole process tree: the one place stepkit does it (stages, tests).

SIGKILL, which nothing can ignore, to each process and to the process group the child
leads (its own session), which catches descendants that were re-parented; then a brief
wait until each is dead or a zombie its parent has yet to reap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil


def kill_processes(procs: list[psutil.Process], pgid: int | None = None) -> int:
    """Kill ``procs`` and, when given, the process group ``pgid``; returns how many went."""
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


def kill_tree(pid: int) -> None:
    """Kill a process, every descendant, and the group it leads. The root is left for
    its parent (the caller) to reap."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        procs = []
    kill_processes(procs, pid)


def wait_dead(procs: list[psutil.Process], timeout: float = 2.0) -> None:
    """Wait (briefly) until killed processes are gone or zombies nobody reaped yet."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        while time.monotonic() < deadline:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.005)
