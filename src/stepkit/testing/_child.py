"""The child side of an isolated test: import a script, check ``main``, call it, report.

The tester compiles this file once and runs it with ``python -B -c BOOT JOB RESULT``, where
JOB holds this code and the job; the tester imports it only for :func:`signature_problem`
(``--fast``). It uses only what a bare interpreter has already loaded (``sys``, ``os``,
``marshal``, ``time``) so that its start-up costs next to nothing over ``python script.py``;
``traceback`` and ``inspect`` are imported only when they are needed.

The job and the report are ``marshal``-ed dicts. The report is written before the child
exits on every path it controls: ``stage`` says how far it got (``import``, ``main``,
``signature``, ``run``, ``done``), ``error`` describes the exception that stopped it.
"""

import marshal
import os
import sys
import time

# No ``from __future__ import annotations`` and no ``typing`` at run time: each import costs
# the child time. Annotations naming typing's types are quoted; mypy reads TYPE_CHECKING.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PARAMS = ("input_paths", "output_paths", "environ_vars", "job_args")


class JobArgs:
    """The parsed arguments a script gets: attribute access like ``argparse.Namespace``."""

    def __init__(self, values: "dict[str, Any]") -> None:
        self.__dict__.update(values)

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def __getitem__(self, key: str) -> "Any":
        return self.__dict__[key]

    def get(self, key: str, default: "Any" = None) -> "Any":
        return self.__dict__.get(key, default)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"JobArgs({inner})"


def _error(exc: BaseException) -> dict[str, str]:
    import traceback

    if exc.__traceback__ is not None:  # start at the user's code, not at this file's frame
        exc = exc.with_traceback(exc.__traceback__.tb_next)

    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def signature_problem(main: "Callable[..., Any]") -> str | None:
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


def run(job: "dict[str, Any]") -> "dict[str, Any]":
    report: dict[str, Any] = {"stage": "import", "error": None, "exit_code": None, "returned": None}
    path = job["script"]
    sys.path[0] = os.path.dirname(path)  # the script's folder, as `python script.py` has it
    name = job["module"] if job["module"] not in sys.modules else f"_script_{job['module']}"
    module = type(sys)(name)
    module.__file__ = path
    sys.modules[name] = module
    started = time.perf_counter()
    try:
        with open(path, "rb") as handle:
            source = handle.read()
        exec(compile(source, path, "exec"), module.__dict__)
    except SystemExit as exc:
        report["exit_code"] = exc.code if isinstance(exc.code, int) else 1
        report["error"] = _error(exc)
        return report
    except BaseException as exc:  # any failure of the user's module is what we report
        report["error"] = _error(exc)
        return report
    report["import_seconds"] = time.perf_counter() - started
    report["stage"] = "main"
    main = module.__dict__.get("main")
    if main is None or not callable(main):
        return report
    report["stage"] = "signature"
    problem = signature_problem(main)
    if problem is not None:
        report["error"] = {"type": "SignatureError", "message": problem, "traceback": ""}
        return report
    if not job["run"]:
        report["stage"] = "done"
        return report
    report["stage"] = "run"
    started = time.perf_counter()
    try:
        returned = main(
            job["input_paths"], job["output_paths"], job["environ_vars"], JobArgs(job["job_args"])
        )
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        report["run_seconds"] = time.perf_counter() - started
        if code != 0:
            report["exit_code"] = code
            report["error"] = _error(exc)
            return report
        returned = None
    except BaseException as exc:  # any failure of main is what we report
        report["run_seconds"] = time.perf_counter() - started
        report["error"] = _error(exc)
        return report
    report["run_seconds"] = time.perf_counter() - started
    report["returned"] = repr(returned)[:2000]
    report["stage"] = "done"
    return report


def peak_rss_bytes() -> int | None:
    """This process's own high-water mark (``wait4``'s counts the forking tester too)."""
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux: the tester reports no figure
        return None
    return None


def write(report: "dict[str, Any]", result_path: str) -> None:
    # Not atomic on purpose (a rename costs time): the tester reads it only after this
    # process has ended, and a report cut short by a kill fails to load and counts as none.
    with open(result_path, "wb") as handle:
        marshal.dump(report, handle)


if __name__ == "__main__":
    _report = run(globals()["job"])  # bound by the tester's BOOT line, which ran this code
    _report["peak_rss_bytes"] = peak_rss_bytes()
    sys.stdout.flush()
    sys.stderr.flush()
    write(_report, sys.argv[-1])
    sys.exit(_report["exit_code"] or 0)
