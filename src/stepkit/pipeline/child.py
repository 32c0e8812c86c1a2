"""The child side of a ``subprocess`` stage, and the worker side of a ``distributed`` one.

The parent starts ``python -S -c BOOTSTRAP`` and writes one ``marshal`` request on stdin:
its ``sys.path``, the compiled code of this module and of the two it needs (context,
invoke), the stage as module + qualified name (or pickled, for objects), the context as
plain values, and the fd to report on. The child installs those modules, runs the stage
and writes one report on that fd; its stdout/stderr reach the parent as log lines.

Why so frugal: every millisecond of child start-up is paid by every subprocess stage, and
the bound is 1.25 × a bare ``python -c pass``. Skipping ``site`` (the parent's path comes in
the request) and receiving stepkit's code ready-compiled means the child reads no file but
the stage's own module, and imports only what Python has loaded at start-up. Outputs are
checked (JSON, key names) by the parent.
"""

from __future__ import annotations

import marshal
import posix  # os without importing os: see the module docstring
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

#: What the parent runs with ``python -S -c``: read the request, restore the path, install
#: the modules that came compiled with it, go.
BOOTSTRAP = """\
import sys, marshal
r = marshal.load(sys.stdin.buffer)
sys.path[:] = r["path"]
for name, path, code in r["modules"]:
    m = type(sys)(name)
    m.__file__ = path
    sys.modules[name] = m
    exec(marshal.loads(code), m.__dict__)
sys.modules["stepkit.pipeline.child"].main(r)
"""


def run_in_worker(target: Any, context_payload: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt here; describe the outcome as plain values (a "report")."""
    from stepkit.pipeline.context import StageContext
    from stepkit.pipeline.invoke import CacheHit, call_stage

    started = time.time()
    cpu = time.process_time()
    report: dict[str, Any] = {"started_at": started, "ok": True}
    try:
        value = call_stage(target, StageContext.from_payload(context_payload))
    except Exception as exc:  # the stage's failure is data to report, not ours to handle
        import traceback

        report.update(
            ok=False,
            error=exc,
            error_type=type(exc).__name__,
            error_message=str(exc),
            traceback=traceback.format_exc(),
        )
    else:
        report["cached"] = isinstance(value, CacheHit)
        if isinstance(value, CacheHit):
            value = value.outputs
        if value is not None and not isinstance(value, dict) and hasattr(value, "keys"):
            value = dict(value)
        report["value"] = value
    report["finished_at"] = time.time()
    report["cpu_time"] = time.process_time() - cpu
    return report


def _resolve(request: dict[str, Any]) -> Any:
    if "pickled" in request:
        import pickle

        return pickle.loads(request["pickled"])
    module_name: str = request["module"]
    if module_name == "__main__" and request.get("main_file"):
        import runpy
        import types

        # As multiprocessing's spawn does: the parent's script, without its __main__ block.
        module = types.ModuleType("__mp_main__")
        module.__dict__.update(runpy.run_path(request["main_file"], run_name="__mp_main__"))
        sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    else:
        __import__(module_name)
    target = sys.modules[module_name]
    for part in request["qualname"].split("."):
        target = getattr(target, part)
    return target


def _encode(report: dict[str, Any]) -> bytes:
    """marshal for plain data (fast, always loaded); pickle to carry an exception or values
    marshal refuses."""
    if report.get("error") is None:
        report.pop("error", None)
        try:
            return b"M" + marshal.dumps(report)
        except ValueError:
            pass  # not plain data: pickle below
    import pickle

    try:
        return b"P" + pickle.dumps(report)
    except Exception:  # an unpicklable exception: the parent rebuilds it from type and text
        report["error"] = None
    try:
        return b"P" + pickle.dumps(report)
    except Exception as exc:  # unpicklable outputs: report that instead
        report.update(
            ok=False,
            value=None,
            error_type="StageOutputError",
            error_message=f"Stage {report.get('stage')!r}: outputs cannot be sent back: {exc}",
        )
        return b"P" + pickle.dumps(report)


def main(request: dict[str, Any]) -> None:
    try:
        target = _resolve(request)
    except Exception as exc:  # the stage cannot even be loaded: report it like a failure
        import traceback

        report: dict[str, Any] = {
            "ok": False,
            "started_at": time.time(),
            "finished_at": time.time(),
            "error_type": type(exc).__name__,
            "error_message": f"cannot load the stage in the child process: {exc}",
            "traceback": traceback.format_exc(),
        }
    else:
        report = run_in_worker(target, request["context"])
    report["stage"] = request["context"]["stage"]
    data = _encode(report)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = int(request["fd"])
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]
    posix.close(fd)
