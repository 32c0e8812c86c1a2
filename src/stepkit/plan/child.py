"""Runs one step node in a fresh process: ``python -m stepkit.plan.child PAYLOAD.json``.

The payload says what to run — a script's ``main`` or a builder's ``run(context)`` — and
with which local folders, environment and arguments. The result (what ``main`` returned,
or the error with its traceback) is written as JSON next to the payload; the exit status
is 0 on success and 1 on failure. Only the standard library and the step's own imports
are loaded here, so a step starts about as fast as ``python script.py`` would.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any


def _load(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_payload(payload: dict[str, Any]) -> Any:
    """Call the step's code as the payload says; returns what it returned."""
    for folder in payload["outputs"].values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    if payload["how"] == "script":
        module = _load(payload["script"], "__stepkit_script__")
        main = getattr(module, "main", None)
        if not callable(main):
            raise AttributeError(f"{Path(payload['script']).name} has no callable main()")
        return main(
            dict(payload["inputs"]),
            dict(payload["outputs"]),
            dict(payload["environment"]),
            dict(payload["arguments"]),
        )
    config_module = _load(payload["config_file"], "__stepkit_config__")
    config = getattr(config_module, payload["config_class"]).model_validate(payload["config"])
    builder_module = _load(payload["builder_file"], "__stepkit_builder__")
    builder = getattr(builder_module, payload["builder_class"])(config)
    context = {
        "inputs": dict(payload["inputs"]),
        "outputs": dict(payload["outputs"]),
        "node": payload["node"],
        "run_id": payload["run_id"],
        "environment": dict(payload["environment"]),
        "arguments": dict(payload["arguments"]),
    }
    return builder.run(context)


def jsonable(value: Any) -> Any:
    """``value`` if it is JSON, else its ``repr`` (what a step returned is only reported)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    payload_file = Path(args[0])
    payload = json.loads(payload_file.read_text())
    result_file = payload_file.with_suffix(".result.json")
    try:
        returned = run_payload(payload)
    except BaseException as exc:  # the step's failure, whatever it is, becomes the report
        traceback.print_exc()
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1
        result_file.write_text(
            json.dumps(
                {
                    "ok": False,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    "traceback": traceback.format_exc(),
                    "exit_code": code or 1,
                }
            )
        )
        return code or 1
    result_file.write_text(json.dumps({"ok": True, "returned": jsonable(returned)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
