"""A pipeline named by its recorded source (``module:attr`` or ``path/to/file.py:attr``),
built again so that a run of it can be resumed in another process."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from stepkit.errors import PipelineDefinitionError
from stepkit.pipeline.pipeline import Pipeline


def load_pipeline(source: str) -> Pipeline:
    """``module:attr`` or ``path/to/file.py:attr`` → a Pipeline (calling a factory)."""
    module_name, _, attr = source.partition(":")
    if not attr:
        raise PipelineDefinitionError(f"--pipeline {source!r}: expected MODULE:ATTR.")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise PipelineDefinitionError(f"--pipeline {source!r}: cannot load {path}.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PipelineDefinitionError(
                f"--pipeline {source!r}: cannot import {module_name}: {exc}"
            ) from exc
    target = getattr(module, attr, None)
    if target is None:
        raise PipelineDefinitionError(f"--pipeline {source!r}: {module_name} has no {attr!r}.")
    if not isinstance(target, Pipeline) and callable(target):
        target = target()
    if not isinstance(target, Pipeline):
        raise PipelineDefinitionError(
            f"--pipeline {source!r} is a {type(target).__name__}, not a Pipeline or a factory."
        )
    return target
