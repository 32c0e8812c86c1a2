"""Running a pipeline step's script on its own environment's interpreter.

A step node's stage (:mod:`stepkit.plan.node`) does its own part — inputs, cache, storing
outputs — on stepkit's interpreter, and in per-step mode hands the script to a child on
the environment's interpreter through the one child protocol (``kind="script"``, as the
tester does): stepkit is not installed there, and need not be. What the script writes
goes to the stage's own stdout and stderr, so it lands in the run's log as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepkit.child import script_entry
from stepkit.errors import RemoteStageError
from stepkit.processes import run_child

if TYPE_CHECKING:
    from stepkit.envs.store import Environment


def run_step_script(
    environment: Environment,
    *,
    node: str,
    script: Path,
    input_paths: Mapping[str, str],
    output_paths: Mapping[str, str],
    environ: Mapping[str, str],
    arguments: Mapping[str, str],
    argv: list[str],
) -> Any:
    """Run ``script`` as a step (``main(...)``, or as a program) on ``environment``'s
    interpreter; what ``main`` returned, as its ``repr``.

    Raises:
        RemoteStageError: the script failed (its traceback is on the stage's stderr), or
            its process died before reporting.
    """
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}

    def forward(stream: str, chunk: bytes) -> None:
        target = streams[stream]
        buffer = getattr(target, "buffer", None)
        if buffer is None:  # a text-only stream (a test's capture): decode
            target.write(chunk.decode("utf-8", "replace"))
            return
        target.flush()  # what the stage itself wrote comes first
        buffer.write(chunk)
        buffer.flush()

    env = {**os.environ, **environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONSTARTUP", None)
    ran = run_child(
        {
            "kind": "script",
            **script_entry(str(script)),
            "run": True,
            "input_paths": dict(input_paths),
            "output_paths": dict(output_paths),
            "environ_vars": dict(environ),
            "job_args": dict(arguments),
            "argv": list(argv),
        },
        output=forward,
        timeout=None,  # the stage's own timeout kills this child with the stage's tree
        env=env,
        python=str(environment.python),
    )
    report = ran.report
    where = f"Python {environment.python_version}, environment {environment.key}"
    if report is None:
        raise RemoteStageError(
            node,
            "ChildProcessError",
            f"the script's process ({where}) exited with status {ran.returncode} before reporting",
        )
    if report.get("ok"):
        return report.get("value")
    if report.get("traceback"):
        sys.stderr.write(str(report["traceback"]))
        sys.stderr.flush()
    if report.get("phase") == "main" and "type" not in report:
        raise RemoteStageError(node, "AttributeError", f"{script.name} has no callable main()")
    raise RemoteStageError(
        node, str(report.get("type", "Error")), f"{report.get('message', '')} ({where})"
    )
