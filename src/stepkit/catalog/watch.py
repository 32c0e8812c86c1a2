"""Live updates: watch the workspaces (watchfiles) and apply each batch of changes to the
index — only the folders of the changed paths are read, the tree is not walked again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from stepkit.catalog.catalog import StepCatalog  # typing only: the view never imports this

#: How long watchfiles waits for more changes before yielding a batch (milliseconds).
DEBOUNCE_MS: Final = 10
STEP_MS: Final = 5


@dataclass(frozen=True, slots=True)
class WatchUpdate:
    """One applied batch: how many files changed the index, which paths, and how long it
    took to be in the index (one transaction: in it is saved)."""

    touched: int
    paths: list[str]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"touched": self.touched, "paths": self.paths, "seconds": round(self.seconds, 4)}


def watch_catalog(
    catalog: StepCatalog, *, stop_event: threading.Event | None = None
) -> Iterator[WatchUpdate]:
    """Yield an update each time changes reach the index (until ``stop_event``)."""
    from watchfiles import watch  # only a watching process needs the watcher

    session = catalog.session
    workspaces = catalog.project.workspaces
    roots = [ws.steps_dir for ws in workspaces if ws.steps_dir.is_dir()]
    registries = {str(ws.registry_file) for ws in workspaces if ws.registry_file}
    roots += [
        Path(r).parent for r in registries if not any(Path(r).is_relative_to(x) for x in roots)
    ]
    for changes in watch(
        *roots,
        watch_filter=lambda _change, path: (
            path.endswith((".py", ".step.yaml")) or path in registries
        ),
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop_event,
        rust_timeout=200,
        yield_on_timeout=False,
    ):
        started = time.perf_counter()
        paths = sorted({path for _, path in changes})
        if registries.intersection(paths):  # another registry: resolve everything again
            report = session.refresh()
            touched = report.parsed + report.removed + 1
        else:
            touched = session.apply_changes([Path(p) for p in paths])
        if touched:
            yield WatchUpdate(touched, paths, time.perf_counter() - started)
