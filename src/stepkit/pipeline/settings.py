"""How a run is run: one frozen :class:`RunSettings`, passed whole from the caller to the
runner, and the progress events a run reports to whoever asked for them."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from stepkit.errors import PipelineDefinitionError
from stepkit.state.leases import DEFAULT_LEASE_SECONDS
from stepkit.state.records import RunStatus, StageRecord


def default_max_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything about running a pipeline that is not the pipeline itself.

    Args:
        executor: the ``concurrent.futures.Executor`` for ``distributed`` stages.
        max_workers: stages running at once (default: CPUs + 4, at most 32).
        fail_fast: stop the whole run at the first stage that fails for good.
        keep_temp: keep the per-run and per-stage temp/scratch folders.
        temp_root, scratch_root: where those folders go (default: the system temp folder).
        lease_seconds: how long a run stays ours without a heartbeat (see ``state.leases``).
        cancel_event: set it to stop the run (stages recorded ``cancelled``).
    """

    executor: Executor | None = None
    max_workers: int | None = None
    fail_fast: bool = False
    keep_temp: bool = False
    temp_root: Path | None = None
    scratch_root: Path | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    cancel_event: threading.Event | None = None

    def __post_init__(self) -> None:
        if self.max_workers is not None and self.max_workers < 1:
            raise PipelineDefinitionError(
                f"max_workers must be at least 1, not {self.max_workers}."
            )
        if self.lease_seconds <= 0:
            raise PipelineDefinitionError(
                f"lease_seconds must be positive, not {self.lease_seconds}."
            )

    @property
    def workers(self) -> int:
        return self.max_workers or default_max_workers()


class SettingsOverrides(TypedDict, total=False):
    """:class:`RunSettings` fields given one by one (``pipe.run(max_workers=4)``)."""

    executor: Executor | None
    max_workers: int | None
    fail_fast: bool
    keep_temp: bool
    temp_root: Path | None
    scratch_root: Path | None
    lease_seconds: float
    cancel_event: threading.Event | None


@dataclass(frozen=True, slots=True)
class RunProgress:
    """What a run has just committed: sent to the ``progress`` callback after each commit.

    ``stages`` lists every stage of the run in graph order; ``records`` are the stage
    attempts written by this commit (none in the first event, sent when the run starts);
    ``status`` is the run's, final in the last event.
    """

    run_id: str
    pipeline: str
    stages: tuple[str, ...]
    records: tuple[StageRecord, ...]
    status: RunStatus


#: Called on the runner's thread; it should return quickly (the run waits for it).
Progress = Callable[[RunProgress], None]
