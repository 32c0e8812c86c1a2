"""Subprocess stages that outlived their runner: recorded as they start, killed before a
resume (or a reap) runs the stage again, so two attempts of one stage never run at once.

Each subprocess attempt leads its own process group. Right after the child is spawned —
before it has read its request, so before the stage does anything — the runner records
the group in the run's folder (``<temp>/stepkit-<run>/processes/``): the group, the host,
and when its leader started, so that a reused pid is never taken for it. The record goes
when the attempt ends. A runner that dies leaves its records behind (and its folder: it
never got to remove it); the next runner to resume or reap the run on this host kills
every recorded group still alive, then removes the records.

Process groups are local to a machine, so the records are too: a run resumed on another
host cannot see, nor kill, processes left on the first.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import psutil

from stepkit.atomic import atomic_write_text
from stepkit.pipeline.executors import ProcessTable
from stepkit.processes import group_members, kill_processes


class AttemptProcesses(ProcessTable):
    """The child of one attempt: kept in the runner's table (so a cancel kills it) and
    recorded in ``record`` while it runs."""

    def __init__(self, table: ProcessTable, record: Path) -> None:
        super().__init__()
        self._table = table
        self._record = record

    def add(self, proc: subprocess.Popen[bytes]) -> bool:
        if not self._table.add(proc):
            return False
        try:
            created = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:  # gone already: nothing will be left to kill
            return True
        self._record.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"pgid": proc.pid, "host": socket.gethostname(), "created": created})
        # Not fsynced: a machine that goes down takes the process down with it.
        atomic_write_text(self._record, line, durable=False)
        return True

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        self._table.discard(proc)
        self._record.unlink(missing_ok=True)

    def kill_all(self) -> None:
        self._table.kill_all()


def kill_orphans(folder: Path) -> list[int]:
    """Kill every process group recorded in ``folder`` that is still alive on this host
    (the stages a dead runner left running); the records are removed. Returns the groups
    killed."""
    try:
        records = sorted(folder.iterdir())
    except FileNotFoundError:
        return []
    host = socket.gethostname()
    killed = []
    for path in records:
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a record half-written when its runner died
            found = {}
        if found.get("host") == host and _kill(found["pgid"], found["created"]):
            killed.append(found["pgid"])
        path.unlink(missing_ok=True)
    return killed


def _kill(pgid: int, created: float) -> bool:
    """Kill what is left of the recorded group: its leader and everything under it while
    the leader is still this pid (not a later process given the same); else, the leader
    having died with its runner (:func:`stepkit.child.die_with_parent`), the processes it
    started that are still in its group (the group keeps its number while they live)."""
    try:
        leader = psutil.Process(pgid)
        if abs(leader.create_time() - created) >= 0.01:
            return False  # the pid went to another process: not ours
        if leader.status() != psutil.STATUS_ZOMBIE:
            return kill_processes([*leader.children(recursive=True), leader], pgid) > 0
    except psutil.NoSuchProcess:
        pass  # the leader is gone: its group may not be
    members = [p for p in group_members(pgid) if _started_after(p, created)]
    return bool(members) and kill_processes(members, pgid) > 0


def _started_after(process: psutil.Process, created: float) -> bool:
    try:
        return process.create_time() >= created - 0.01
    except psutil.NoSuchProcess:
        return False
