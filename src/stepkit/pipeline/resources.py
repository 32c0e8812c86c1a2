"""Per-run and per-stage temp and scratch folders, removed however the run ends.

Layout: ``<temp_root>/stepkit-<run>/temp/<stage>`` and ``.../scratch/<stage>`` (scratch may
live on another disk: ``scratch_root``). Folders are made by the stage on first use; the
runner removes a stage's folders when the stage ends and the run's when the run ends, on
success, failure and cancellation alike, unless ``keep_temp`` is set.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _folder_name(stage: str) -> str:
    return _UNSAFE.sub("_", stage) or "_"


class RunResources:
    """The folders of one run."""

    def __init__(
        self,
        run_id: str,
        *,
        temp_root: Path | None = None,
        scratch_root: Path | None = None,
        keep_temp: bool = False,
    ) -> None:
        base = Path(temp_root) if temp_root is not None else Path(tempfile.gettempdir())
        self.run_dir = base / f"stepkit-{run_id}"
        self.scratch_run_dir = (
            Path(scratch_root) / f"stepkit-{run_id}" if scratch_root else self.run_dir
        )
        self.keep_temp = keep_temp
        self._run_dir = str(self.run_dir)
        self._scratch_dir = str(self.scratch_run_dir)

    def stage_paths(self, stage: str) -> tuple[str, str]:
        """(temp, scratch) folder paths for a stage; not created here."""
        name = _folder_name(stage)
        return (
            os.path.join(self._run_dir, "temp", name),
            os.path.join(self._scratch_dir, "scratch", name),
        )

    @property
    def processes_dir(self) -> Path:
        """Where the running attempts' process groups are recorded (``pipeline.orphans``)."""
        return self.run_dir / "processes"

    def process_record(self, stage: str, attempt: int) -> Path:
        return self.processes_dir / f"{_folder_name(stage)}.{attempt}.json"

    def release_stage(self, stage: str) -> None:
        """Remove a finished stage's folders (cheap when the run made none)."""
        if self.keep_temp or not (os.path.isdir(self._run_dir) or os.path.isdir(self._scratch_dir)):
            return
        for path in self.stage_paths(stage):
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        """Remove the run's folders (``keep_temp`` keeps them)."""
        if self.keep_temp:
            return
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.scratch_run_dir, ignore_errors=True)
