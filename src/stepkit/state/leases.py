"""Leases: a running run is held by its runner's heartbeat; a dead runner's lease expires.

The next runner (or ``resume``) reaps it: the run and its unfinished stages become
``interrupted``, and ``resume`` runs them again.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import psutil

from stepkit.state.base import StateRepository
from stepkit.state.records import RunRecord, RunStatus

#: How long a lease lasts without a heartbeat; the runner renews it every third of that.
DEFAULT_LEASE_SECONDS = 30.0


def holder(run: RunRecord) -> str:
    return f"pid {run.pid} on {run.host}"


def lease_is_dead(run: RunRecord, *, now: float) -> bool:
    """Expired, or held by a process on this host that no longer exists."""
    if run.status != RunStatus.RUNNING:
        return False
    if run.lease_expires_at is None or run.lease_expires_at < now:
        return True
    if run.host == socket.gethostname() and run.pid is not None:
        return not _alive(run.pid)
    return False


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def interrupt(
    repo: StateRepository, run: RunRecord, *, now: float | None = None
) -> RunRecord | None:
    """Mark a run whose runner died, and its stages still running, ``interrupted``.

    Atomic against a runner claiming or renewing the run meanwhile: then nothing is
    written and None is returned (the run is not ours to reap).
    """
    now = time.time() if now is None else now
    reason = f"runner {holder(run)} stopped without finishing (lease lost)"
    if not repo.interrupt_run(run, now=now, reason=reason):
        return None
    return replace(
        run, status=RunStatus.INTERRUPTED, finished_at=now, error=reason, lease_expires_at=None
    )


def reap_expired(repo: StateRepository, *, now: float | None = None) -> list[str]:
    """Interrupt every running run whose lease is dead; returns their ids."""
    now = time.time() if now is None else now
    reaped = []
    for run in repo.list_runs(status=RunStatus.RUNNING):
        if lease_is_dead(run, now=now) and interrupt(repo, run, now=now) is not None:
            reaped.append(run.run_id)
    return reaped


class Heartbeat:
    """Renews a run's lease (and records its last heartbeat) at once and then every third of
    its length, from a thread of the runner process (so a long stage on the runner's own
    thread never lets the lease lapse)."""

    def __init__(self, repo: StateRepository, run_id: str, *, lease_seconds: float) -> None:
        self._repo = repo
        self._run_id = run_id
        self._lease = lease_seconds
        self._stop = threading.Event()
        #: Set when a renewal finds the run no longer ours (another runner reaped it).
        self.lost = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"stepkit-heartbeat-{run_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        from stepkit.errors import StateStoreError
        from stepkit.observability import get_logger

        # The first beat at once: the run's last heartbeat is then never older than its
        # runner (a resume's runner included), however soon it dies.
        while True:
            now = time.time()
            try:
                if not self._repo.renew_lease(self._run_id, expires_at=now + self._lease, now=now):
                    self.lost.set()
                    return
            except (StateStoreError, OSError) as exc:  # a missed beat; the next may land
                get_logger("stepkit.state").warning(
                    "lease_renewal_failed", run_id=self._run_id, error=str(exc)
                )
            if self._stop.wait(self._lease / 3):
                return
