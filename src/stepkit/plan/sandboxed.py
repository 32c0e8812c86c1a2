"""A script step run under bubblewrap (``stepkit run --sandbox``, ``[run] sandbox = true``).

The node's stage process keeps doing what only stepkit does (the cache, the store), and
starts the script in a child of the one child protocol (:mod:`stepkit.child`, as a test
does) inside a :class:`~stepkit.sandbox.Sandbox`: the contract's container paths mounted
on the node's folders — inputs read-only, since they are the store's own files — the
network cut and everything else read-only. A script reading fixed container paths runs
unchanged; one that ``pip install``s or calls a service fails, and the machine stays as
it was.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from stepkit.child import script_entry
from stepkit.errors import RemoteStageError
from stepkit.processes import run_child
from stepkit.sandbox import GUARD_ENV, Sandbox, hint, unavailable


def sandbox_off_warning() -> str | None:
    """The one-line warning a run asking for the sandbox gives where bubblewrap cannot run
    (missing or not permitted), or None when it can."""
    why = unavailable()
    if why is None:
        return None
    return (
        f"warning: the sandbox is off: {why}; container paths are not mapped, "
        "pip and proxies are disabled through the environment"
    )


def run_sandboxed(
    *,
    node: str,
    script: str,
    workdir: Path,
    input_paths: Mapping[str, str],
    output_paths: Mapping[str, str],
    containers: Mapping[str, Mapping[str, str]],
    environment: Mapping[str, str],
    arguments: Mapping[str, str],
    argv: list[str],
    python: str | None = None,
) -> str | None:
    """Run ``script`` in the sandbox; its output goes to this process's own streams.
    Returns what ``main`` returned, as its ``repr`` (it came from another process).

    ``containers`` holds the contract's ``inputs`` and ``outputs``: logical name → container
    path. An input or output the contract gives no path keeps its local one.

    Where bubblewrap cannot run (:func:`~stepkit.sandbox.unavailable`; the run warned once)
    the script runs the same way without it: its local paths, pip and proxies disabled
    through the environment.

    Raises:
        RemoteStageError: the script failed (its exception, exit status or sandbox reason).
    """
    for folder in output_paths.values():  # mount points need their folders
        Path(folder).mkdir(parents=True, exist_ok=True)
    declared_in, declared_out = containers.get("inputs", {}), containers.get("outputs", {})
    sandbox, mapped_in, mapped_out = Sandbox.mapping(
        str(workdir),
        inputs={k: (declared_in[k], v) for k, v in input_paths.items() if k in declared_in},
        outputs={k: (declared_out[k], v) for k, v in output_paths.items() if k in declared_out},
        readonly_inputs=True,
    )
    off = unavailable() is not None
    if off:
        mapped_in, mapped_out = {}, {}
    env = {
        **os.environ,
        **GUARD_ENV,
        **environment,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(workdir),  # the one place it may write temporary files
    }
    streams = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}

    def forward(stream: str, chunk: bytes) -> None:
        streams[stream].write(chunk)
        streams[stream].flush()

    errors = bytearray()  # the tail of stderr, for the reason

    def output(stream: str, chunk: bytes) -> None:
        forward(stream, chunk)
        if stream == "stderr":
            errors.extend(chunk)
            del errors[:-4000]

    ran = run_child(
        {
            "kind": "script",
            **script_entry(script),
            "run": True,
            "input_paths": {**input_paths, **mapped_in},
            "output_paths": {**output_paths, **mapped_out},
            "environ_vars": dict(environment),
            "job_args": dict(arguments),
            "argv": argv,
        },
        output=output,
        timeout=None,  # the stage's own timeout kills this whole tree
        cwd=str(workdir),
        env=env,
        wrap=() if off else sandbox.command(),
        python=python,  # the step's own environment's interpreter (per-step mode), if any
    )
    report = ran.report
    if report is not None and report.get("ok"):
        value: str | None = report.get("value")
        return value
    stderr = errors.decode("utf-8", "replace")
    if report is None or "type" not in report:
        code = report.get("exit_code") if report else ran.returncode
        reason = f"the script exited with status {code}{'' if off else ' in the sandbox'}"
        raise RemoteStageError(
            node, "ScriptError", reason + hint(reason, stderr, sandboxed=not off)
        )
    first = f"{report['type']}: {report['message']}".splitlines()[0]
    text = f"{report['message']}\n{report.get('traceback', '')}\n{stderr}"
    sys.stderr.write(report.get("traceback", ""))
    raise RemoteStageError(
        node, report["type"], report["message"] + hint(first, text, sandboxed=not off)
    )
