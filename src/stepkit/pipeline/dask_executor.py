# mypy: disable-error-code="no-untyped-call"
# (distributed's Client and LocalCluster have no annotations on their constructors)
"""Dask distributed as the executor of ``distributed`` stages: a scheduler, or a LocalCluster.

stepkit grows no cluster of its own: ``dask://HOST:PORT`` connects to a running scheduler,
``dask-local`` starts a :class:`distributed.LocalCluster` (worker processes, one thread
each) for the run. Either way the runner gets ``Client.get_executor()``, a plain
``concurrent.futures.Executor``, and submits each attempt to it as it would to a pool.

A worker that dies mid-stage surfaces as :class:`distributed.KilledWorker`; the stage's
retry policy decides what happens next, and :func:`lost_worker_policy` retries exactly
that and nothing else. The LocalCluster's scheduler is told not to re-run a task itself
(``allowed_failures=0``) so that every attempt is stepkit's, recorded in the state store;
an external scheduler applies its own ``distributed.scheduler.allowed-failures`` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from urllib.parse import urlsplit

from stepkit.errors import ExecutorSpecError, SchedulerUnreachableError
from stepkit.pipeline.stage import RetryPolicy

DASK_LOCAL = "dask-local"
DASK_SCHEME = "dask://"
#: Workers a ``dask-local`` cluster starts when the caller names no number.
LOCAL_WORKERS = 2
#: Attempts in all for a stage whose worker keeps dying (the first included).
LOST_WORKER_ATTEMPTS = 3
#: Seconds to wait for a scheduler given by address.
CONNECT_TIMEOUT = 10.0


def check_executor(spec: str) -> str:
    """``spec`` if it names an executor (local, process, dask-local, dask://HOST:PORT)."""
    if spec in ("local", "process", DASK_LOCAL):
        return spec
    if spec.startswith(DASK_SCHEME):
        parts = urlsplit(spec)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.hostname and port and not parts.path.strip("/"):
            return spec
    raise ExecutorSpecError(spec)


def is_dask(spec: str) -> bool:
    """True for the executors this module provides."""
    return spec == DASK_LOCAL or spec.startswith(DASK_SCHEME)


def lost_worker_policy(max_attempts: int = LOST_WORKER_ATTEMPTS) -> RetryPolicy:
    """Retry a stage whose worker died (``KilledWorker``), at once, and nothing else."""
    from distributed import KilledWorker

    return RetryPolicy(
        max_attempts=max_attempts, backoff="fixed", delay=0.0, retry_on=(KilledWorker,)
    )


@contextmanager
def dask_executor(spec: str, *, workers: int | None = None) -> Iterator[Executor]:
    """A ``concurrent.futures.Executor`` on Dask for the block; the cluster (``dask-local``)
    or the connection (``dask://``) is closed at its end.

    Args:
        spec: ``"dask-local"`` or ``"dask://HOST:PORT"`` (a running ``dask scheduler``).
        workers: worker processes of a ``dask-local`` cluster (default 2); ignored for an
            existing scheduler, whose workers are its own.
    """
    from distributed import Client, LocalCluster

    check_executor(spec)
    cluster: LocalCluster | None = None
    if spec == DASK_LOCAL:
        cluster = LocalCluster(
            n_workers=workers or LOCAL_WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: never clash with another cluster
            scheduler_kwargs={"allowed_failures": 0},
        )
        client = Client(cluster)
    elif is_dask(spec):
        address = "tcp://" + spec.removeprefix(DASK_SCHEME)
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachableError(spec, str(exc) or type(exc).__name__) from exc
    else:
        raise ExecutorSpecError(spec)
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
