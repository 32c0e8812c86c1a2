"""The child side of the one child-process protocol: a pipeline stage or a script under test.

The parent (:mod:`stepkit.processes`) starts ``python -c BOOTSTRAP`` and writes one request
on stdin; the child runs what it asks and writes one report on the fd the request names.
Its stdout and stderr are the user code's own; the parent captures them.

Request and report are ``marshal``-ed dicts of plain values (always loaded, and readable by
every Python since 3.4). A request holds the child's ``sys.path``, stepkit modules compiled
by the parent (this one, and for a stage the two it needs), and either

- ``kind="stage"``: the stage by module and qualified name (``pickled`` for objects) and its
  context as plain values; the report carries the outputs (``value``) or the error, with the
  exception pickled so that the parent can raise the same type; or
- ``kind="script"``: a script file, the folders, env vars and job arguments for its ``main``;
  the report says how far it got (``phase``: ``import``, ``main``, ``signature``, ``run``,
  ``done``) and what stopped it.

Start-up is paid by every subprocess stage and every test, so this module stays within what
a bare interpreter has loaded (``sys``, ``marshal``, ``posix``, ``time``) and imports more
only on the path that needs it (a failure's ``traceback``, a pickled object's ``pickle``).
It is standard library only and written for Python 3.8+: the child may be another
interpreter than the parent's.

Start-up shortcuts live here and nowhere else, each measured (CPU time of the child, on a
machine where a bare ``python -c pass`` takes ~11 ms; ``benchmarks/orchestrator_bench.py``
and ``benchmarks/tester_bench.py`` measure the whole):

- the parent sends stepkit's modules compiled (:func:`compiled`), so the child neither
  imports the ``stepkit`` package (importlib, warnings: ~1.7 ms) nor reads stepkit's
  bytecode files (~1 ms for three modules);
- a stage's child skips ``site`` (``-S``: ~2.7 ms), its ``sys.path`` coming whole with the
  request, unless an import hook that only ``site`` installs is in use (an editable
  install's finder). A script under test starts as ``python script.py`` would, with
  ``site``: ``exit()``, ``.pth`` hooks and all.
"""

import marshal
import posix  # os without importing os (os is loaded, but this says what is used)
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: What the parent runs with ``python -c``: read the request, restore the path, install the
#: modules that came compiled with it, go.
BOOTSTRAP = """\
import sys, marshal
r = marshal.load(sys.stdin.buffer)
if r["path"] is not None:
    sys.path[:] = r["path"]
for name, path, code in r["modules"]:
    m = type(sys)(name)
    m.__file__ = path
    sys.modules[name] = m
    exec(marshal.loads(code), m.__dict__)
sys.modules["stepkit.child"].main(r)
"""

# --- starting the child: the parent's side ---------------------------------------------

_COMPILED: "dict[str, tuple[str, str, bytes]]" = {}


def compiled(name: str) -> "tuple[str, str, bytes]":
    """A stepkit module as the bootstrap installs it: name, file, marshalled code."""
    if name not in _COMPILED:
        __import__(name)
        path = sys.modules[name].__file__
        assert path is not None
        with open(path, encoding="utf-8") as handle:
            code = compile(handle.read(), path, "exec", dont_inherit=True)
        _COMPILED[name] = (name, path, marshal.dumps(code))
    return _COMPILED[name]


def command(kind: str) -> "list[str]":
    """The child's command line for a request of ``kind`` (see the module docstring)."""
    skip_site = kind == "stage" and not _site_hooks()
    return [sys.executable, *(["-S"] if skip_site else []), "-c", BOOTSTRAP]


def _site_hooks() -> bool:
    """Whether an import hook that only ``site`` installs (an editable install's finder)
    is in use here, so that a child without ``site`` could not import what we can."""
    for finder in sys.meta_path:
        kind = finder if isinstance(finder, type) else type(finder)
        if kind.__module__.startswith("__editable__") or "editable" in kind.__name__.lower():
            return True
    return False


# --- the child ---------------------------------------------------------------------------

#: The standard parameters of a script's ``main``.
PARAMS = ("input_paths", "output_paths", "environ_vars", "job_args")


def main(request: "dict[str, Any]") -> None:
    """Run what the request asks, write the report on its fd, exit with the script's code."""
    report = run_stage_request(request) if request["kind"] == "stage" else run_script(request)
    report["peak_rss"] = peak_rss_bytes()
    data = encode(report)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = int(request["fd"])
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]
    posix.close(fd)
    code = report.get("exit_code")
    if code:
        sys.exit(code)


# --- stages ------------------------------------------------------------------------------


def run_in_worker(target: "Any", context_payload: "dict[str, Any]") -> "dict[str, Any]":
    """Run one attempt of a stage here; its outcome as plain values (``error`` is the
    exception itself). A distributed worker calls this directly."""
    from stepkit.pipeline.context import StageContext
    from stepkit.pipeline.invoke import CacheHit, call_stage

    started = time.time()
    cpu = time.process_time()
    report: dict[str, Any] = {"started_at": started, "ok": True, "phase": "run"}
    try:
        value = call_stage(target, StageContext.from_payload(context_payload))
    except Exception as exc:  # the stage's failure is data to report, not ours to handle
        report.update(ok=False, error=exc, **describe(exc))
    else:
        report["phase"] = "done"
        report["cached"] = isinstance(value, CacheHit)
        if isinstance(value, CacheHit):
            value = value.outputs
        if value is not None and not isinstance(value, dict) and hasattr(value, "keys"):
            value = dict(value)
        report["value"] = value
    report["finished_at"] = time.time()
    report["cpu_time"] = time.process_time() - cpu
    return report


#: The name the parent's code runs as; a stage defined there is looked up as multiprocessing's
#: spawn does, in the parent's script loaded without its ``__main__`` block.
_MP_MAIN = "__mp_main__"


def _resolve(target: "dict[str, Any]") -> "Any":
    if "pickled" in target:
        import pickle

        return pickle.loads(target["pickled"])
    module_name: str = target["module"]
    if module_name == "__main__" and target.get("main_file"):
        import runpy

        module = type(sys)(_MP_MAIN)
        module.__dict__.update(runpy.run_path(target["main_file"], run_name=_MP_MAIN))
        sys.modules["__main__"] = sys.modules[_MP_MAIN] = module
    else:
        __import__(module_name)
    found = sys.modules[module_name]
    for part in target["qualname"].split("."):
        found = getattr(found, part)
    return found


def run_stage_request(request: "dict[str, Any]") -> "dict[str, Any]":
    try:
        target = _resolve(request["target"])
    except Exception as exc:  # the stage cannot even be loaded: report it like a failure
        info = describe(exc)
        info["message"] = "cannot load the stage in the child process: " + info["message"]
        report = {"ok": False, "phase": "load", "started_at": time.time(), **info}
        report["finished_at"] = report["started_at"]
    else:
        report = run_in_worker(target, request["context"])
    report["stage"] = request["context"]["stage"]
    return report


# --- scripts -----------------------------------------------------------------------------


class JobArgs:
    """The parsed arguments a script gets: attribute access like ``argparse.Namespace``,
    and the mapping reads (``in``, ``[]``, ``get``) scripts written against a dict use."""

    def __init__(self, values: "dict[str, Any]") -> None:
        self.__dict__.update(values)

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def __getitem__(self, key: str) -> "Any":
        return self.__dict__[key]

    def get(self, key: str, default: "Any" = None) -> "Any":
        return self.__dict__.get(key, default)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobArgs) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"JobArgs({inner})"


def load_script(path: str, name: str) -> "Any":
    """Execute a script file as a new module named ``name`` (registered in ``sys.modules``,
    so that dataclasses and pickling inside it work); exceptions are the script's."""
    module = type(sys)(name)
    module.__file__ = path
    sys.modules[name] = module
    with open(path, "rb") as handle:
        source = handle.read()
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def signature_problem(main: "Callable[..., Any]") -> "str | None":
    """Why ``main`` cannot be called as ``main(input_paths, output_paths, environ_vars,
    job_args)`` (a fifth optional ``logger`` is allowed), or ``None``."""
    code = getattr(main, "__code__", None)
    if code is not None and not hasattr(main, "__wrapped__"):
        names = code.co_varnames[: code.co_argcount]
        n_defaults = len(main.__defaults__ or ())
        kw_required = set(
            code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
        )
        kw_required -= set(main.__kwdefaults__ or {})
        shown = ", ".join(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
        required_extra = len(names) - n_defaults > 4
    else:  # a callable object or a decorated function: let inspect work it out
        import inspect

        try:
            params = list(inspect.signature(main).parameters.values())
        except (TypeError, ValueError) as exc:
            return f"main has no readable signature ({exc})"
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = tuple(p.name for p in positional)
        kw_required = {p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty}
        required_extra = any(p.default is p.empty for p in positional[4:])
        shown = ", ".join(p.name for p in params)
    if names[:4] != PARAMS or len(names) > 5 or required_extra or kw_required:
        return (
            f"main({shown}) must take (input_paths, output_paths, environ_vars, job_args)"
            " and at most an optional fifth parameter such as logger=None"
        )
    return None


def _exit_code(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def run_script(request: "dict[str, Any]") -> "dict[str, Any]":
    """Import the script, check its ``main``, call it on the request's folders; a report
    of how far it got. Never raises for anything the script does."""
    report: dict[str, Any] = {"ok": False, "phase": "import", "exit_code": None}
    path = request["script"]
    sys.path[0] = path.rpartition("/")[0] or "."  # the script's folder, as `python script.py`
    stem = path.rpartition("/")[2].rpartition(".")[0]
    name = stem if stem not in sys.modules else "_script_" + stem
    started = time.perf_counter()
    try:
        module = load_script(path, name)
    except BaseException as exc:  # any failure of the user's module is what we report
        report.update(describe(exc, skip_frames=2))
        if isinstance(exc, SystemExit):
            report["exit_code"] = exc.code if isinstance(exc.code, int) else 1
        return report
    report["import_seconds"] = time.perf_counter() - started
    report["phase"] = "main"
    entry = module.__dict__.get("main")
    if entry is None or not callable(entry):
        return report
    report["phase"] = "signature"
    problem = signature_problem(entry)
    if problem is not None:
        report.update(type="SignatureError", message=problem, traceback="")
        return report
    if not request["run"]:
        report.update(ok=True, phase="done")
        return report
    report["phase"] = "run"
    started = time.perf_counter()
    try:
        returned = entry(
            request["input_paths"],
            request["output_paths"],
            request["environ_vars"],
            JobArgs(request["job_args"]),
        )
    except SystemExit as exc:
        report["run_seconds"] = time.perf_counter() - started
        if _exit_code(exc) != 0:
            report["exit_code"] = _exit_code(exc)
            report.update(describe(exc, skip_frames=1))
            return report
        returned = None
    except BaseException as exc:  # any failure of main is what we report
        report["run_seconds"] = time.perf_counter() - started
        report.update(describe(exc, skip_frames=1))
        return report
    report["run_seconds"] = time.perf_counter() - started
    report["value"] = repr(returned)[:2000]
    report.update(ok=True, phase="done")
    return report


# --- reports -----------------------------------------------------------------------------


def describe(exc: BaseException, *, skip_frames: int = 0) -> "dict[str, str]":
    """An exception as report fields (type, message, traceback), its traceback starting
    at the user's code: ``skip_frames`` of this module's own frames are left out."""
    import traceback

    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return {"type": type(exc).__name__, "message": str(exc), "traceback": "".join(lines)}


def encode(report: "dict[str, Any]") -> bytes:
    """``marshal`` for plain data; ``pickle`` to carry an exception or values marshal
    refuses (the first byte says which)."""
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
            type="StageOutputError",
            message=f"Stage {report.get('stage')!r}: outputs cannot be sent back: {exc}",
        )
        return b"P" + pickle.dumps(report)


def decode(data: bytes) -> "dict[str, Any]":
    """The report :func:`encode` made (the parent's side)."""
    if data[:1] == b"M":
        report: dict[str, Any] = marshal.loads(data[1:])
        return report
    import pickle

    loaded: dict[str, Any] = pickle.loads(data[1:])
    return loaded


def peak_rss_bytes() -> "int | None":
    """This process's own high-water mark (``wait4``'s can count the parent's memory at
    fork); None off Linux."""
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux: the parent falls back to wait4's figure
        return None
    return None
