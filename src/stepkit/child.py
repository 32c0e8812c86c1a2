"""The child side of the one child-process protocol: a pipeline stage or a script under test.

The parent (:mod:`stepkit.processes`) starts ``python -c BOOTSTRAP`` and writes its request
on stdin in two parts: the *start* (the child's ``sys.path``, stepkit modules compiled by the
parent — this one, and for a stage the two it needs —, the parent's pid, the report's fd and
the stepkit modules to import ahead) and the *task*. The child sets itself up from the start
(the modules, the signal that kills it with its parent, the imports ahead), then waits for
the task, runs it once, writes one report on the fd and exits: one task per child. A child
that is sent its start early and its task later is a *spare*
(:mod:`stepkit.pipeline.spares`): its start-up is paid while no stage waits for it. Its
stdout and stderr are the user code's own; the parent captures them.

Start, task and report are ``marshal``-ed dicts of plain values (always loaded, and readable
by every Python since 3.4). The task is either

- ``kind="stage"``: handled by the module the request names as ``handler`` (a pipeline
  stage: :func:`stepkit.pipeline.invoke.handle`), which came compiled with the request and
  returns the report; this module knows nothing of stages; or
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

import _thread  # loaded already by every interpreter's import system: costs a lookup
import marshal  # the protocol's format: always loaded, read by every Python since 3.4
import posix  # os without importing os (os is loaded, but this says what is used)
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: What the parent runs with ``python -c``: read the start, restore the path, install the
#: modules that came compiled with it, go (:func:`main` reads the task).
BOOTSTRAP = """\
import sys, marshal
r = marshal.load(sys.stdin.buffer)
if r["path"] is not None:
    sys.path[:] = r["path"]
for name, path, code in r["modules"]:
    m = type(sys)(name)
    m.__file__ = path
    sys.modules[name] = m
    exec(marshal.loads(code) if type(code) is bytes else compile(code, path, "exec"), m.__dict__)
sys.modules["stepkit.child"].main(r)
"""

# --- starting the child: the parent's side ---------------------------------------------

_COMPILED: "dict[str, tuple[str, str, bytes]]" = {}

#: Which bytecode this interpreter runs: a script compiled where the tag is the same runs
#: here as compiled here (as a ``.pyc`` of the same cache tag does), optimization included.
BYTECODE = f"{sys.implementation.cache_tag}-O{sys.flags.optimize}"


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


def source(name: str) -> "tuple[str, str, str]":
    """A stepkit module as source text, for a child on another interpreter (a step's own
    environment), whose bytecode format may not be ours: compiled there by the bootstrap."""
    __import__(name)
    path = sys.modules[name].__file__
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        return (name, path, handle.read())


def command(kind: str, python: "str | None" = None) -> "list[str]":
    """The child's command line for a request of ``kind`` (see the module docstring), on
    ``python`` (default: this interpreter)."""
    skip_site = kind == "stage" and python is None and not _site_hooks()
    return [python or sys.executable, *(["-S"] if skip_site else []), "-c", BOOTSTRAP]


def _site_hooks() -> bool:
    """Whether an import hook that only ``site`` installs (an editable install's finder)
    is in use here, so that a child without ``site`` could not import what we can."""
    for finder in sys.meta_path:
        kind = finder if isinstance(finder, type) else type(finder)
        if kind.__module__.startswith("__editable__") or "editable" in kind.__name__.lower():
            return True
    return False


#: One ``ast.parse`` at a time in a process: CPython 3.11 (3.11.7 here) can fail with
#: "SystemError: AST constructor recursion depth mismatch" when threads parse at once, as
#: ``stepkit test all --jobs 2`` does (CPython issue 106905).
_PARSE_LOCK = _thread.allocate_lock()


def parse_source(source: "str | bytes", filename: str) -> "Any":
    """:func:`ast.parse`, safe to call from several threads."""
    import ast

    with _PARSE_LOCK:
        return ast.parse(source, filename)


def compile_tree(tree: "Any", filename: str) -> "tuple[str, bytes] | None":
    """A parsed script compiled as :func:`script_code` takes it (this interpreter's
    bytecode tag, the marshalled code), or None when it does not compile (a ``return``
    outside a function): the child compiles it again and reports the error."""
    try:
        with _PARSE_LOCK:  # compiling an AST converts it back: the same CPython issue
            code = compile(tree, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return (BYTECODE, marshal.dumps(code))


def script_entry(script: str, *, source_dir: "str | None" = None) -> "dict[str, Any]":
    """How a script is started, read from its folders and source without importing it: the
    request fields ``script``, ``root``, ``module``, ``package``, ``entry``,
    ``has_main_block`` and ``code`` (:func:`script_code`).

    In a package (its folder has an ``__init__.py``, up to the top package; or inside the
    contract's ``source_dir``) it runs as ``package.module`` with the package's parent as
    ``root``. A script whose ``main`` takes no parameters, or that has only a ``__main__``
    block, runs as a program (``python script.py FLAGS``); any other as ``main(...)``.
    """
    import ast
    from pathlib import Path

    path = Path(script)
    top = path.parent
    package = (top / "__init__.py").is_file()
    while package and (top.parent / "__init__.py").is_file():
        top = top.parent
    if not package and source_dir is not None and path.is_relative_to(source_dir):
        top, package = Path(source_dir), True  # run from its source folder, as a package
    root = top.parent if package else path.parent
    parts = path.relative_to(root).with_suffix("").parts if package else (path.stem,)
    try:
        tree = parse_source(path.read_bytes(), str(path))
    except (SyntaxError, ValueError, OSError):  # the child reports it, as an import failure
        tree = ast.Module(body=[], type_ignores=[])
    main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
    has_main_block = any(_is_main_guard(n) for n in tree.body)
    # main() with no parameters reads its own command line; no main: the block is all
    program = not (main.args.args or main.args.posonlyargs) if main else has_main_block
    return {
        "script": str(path),
        "root": str(root),
        "module": ".".join(parts),
        "package": package,
        "entry": "program" if program else "main",
        "has_main_block": has_main_block,
        # a package's module is imported (importlib compiles it); an empty tree: see above
        "code": compile_tree(tree, str(path)) if tree.body and not package else None,
    }


def _is_main_guard(node: "Any") -> bool:
    """``if __name__ == "__main__":``"""
    import ast

    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


# --- the child ---------------------------------------------------------------------------

#: The standard parameters of a script's ``main``.
PARAMS = ("input_paths", "output_paths", "environ_vars", "job_args")


def die_with_parent(parent: "int | None") -> None:
    """Have the kernel SIGKILL this process when the process that started it (``parent``)
    dies, so that a runner or tester killed with SIGKILL leaves no stage or script running
    (Linux's ``PR_SET_PDEATHSIG``); and exit at once if it has died already: before this
    call the signal was not yet asked for, and the child now has another parent.

    Through ``_ctypes``, not ``ctypes``: ~1 ms of start-up rather than ~5 ms. Where there is
    no ``prctl`` (not Linux, an interpreter without ``_ctypes``) nothing is done; the
    runner's records of the process group still let a resume kill a left-over child.
    """
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        import _ctypes

        class _Function(_ctypes.CFuncPtr):  # what ctypes.CFUNCTYPE makes
            _flags_ = _ctypes.FUNCFLAG_CDECL

        this_program = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # None: dlopen(NULL)
        prctl = _Function(_ctypes.dlsym(this_program, "prctl"))
    except (ImportError, OSError, AttributeError):  # no _ctypes or no prctl: see above
        return
    prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if posix.getppid() != parent:
        posix._exit(70)  # EX_SOFTWARE; nobody is left to read it


def main(start: "dict[str, Any]") -> None:
    """Set up from the start, wait for the task, run it, write the report on the start's fd,
    exit with the script's code. A spare let go without a task exits quietly."""
    die_with_parent(start.get("parent"))
    for name in start.get("warm", ()):
        _import_ahead(name)
    try:
        task = marshal.load(sys.stdin.buffer)
    except EOFError:  # a spare the parent no longer needs: nothing ran, nothing to say
        posix._exit(0)
    request = {**start, **task}
    handler = request.get("handler")
    report = run_script(request) if handler is None else sys.modules[handler].handle(request)
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
    if handler is not None:
        _leave(int(code or 0))
    if code:
        sys.exit(code)


def _import_ahead(name: str) -> None:
    """Import a stepkit module the task will need (the module of a stage object's class)
    before the task is known: stepkit's modules do nothing on import but define things."""
    try:  # noqa: SIM105  (contextlib is not loaded in the child: see the docstring)
        __import__(name)
    except Exception:  # the task's own import of it fails alike, and reports why
        pass


def _leave(code: int) -> None:
    """End a stage's child once its report is written: what the interpreter's own exit
    does that a user can notice — wait for non-daemon threads, run ``atexit`` handlers,
    flush stdout and stderr — and then ``_exit``, skipping the teardown of every module.

    The teardown is not free: with numpy and scikit-learn loaded it takes 0.2-0.6 s (and
    ~25 ms with ``_exit``; ``benchmarks/pipeline_bench.py``, "upstream exit"), and the
    runner waits for the exit before a dependent stage can start. Nothing of it reaches
    the run: the report, with all the stage made, is written before this. A script
    under test ends as ``python script.py`` does (the tester reads its outputs after the
    exit), so only stages leave this way.
    """
    threading = sys.modules.get("threading")
    if threading is not None:
        # what the interpreter calls first at exit: joins non-daemon threads, after
        # telling idle concurrent.futures workers to end (a plain join would wait forever)
        threading._shutdown()
    import atexit

    atexit._run_exitfuncs()  # logging.shutdown, weakref finalizers, the user's handlers
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:  # noqa: SIM105  (contextlib is not loaded in the child: see the docstring)
                stream.flush()
            except (OSError, ValueError):  # closed by the user, or the parent went away
                pass
    posix._exit(code)


# --- scripts -----------------------------------------------------------------------------


def namespace(values: "dict[str, Any]") -> "Any":
    """``job_args`` as the script's own parser would have made it: an ``argparse.Namespace``
    when the script uses argparse (it has imported it, so this costs nothing), else a
    ``types.SimpleNamespace`` with the same attributes — not the ~8 ms import of argparse
    for a script that never parses a command line."""
    argparse = sys.modules.get("argparse")
    if argparse is not None:
        return argparse.Namespace(**values)
    return type(sys.implementation)(**values)  # types.SimpleNamespace, without types


def script_code(path: str, compiled: "tuple[str, bytes] | None" = None) -> "Any":
    """The script's code: ``compiled`` (what :func:`script_entry` made from the source it
    parsed) when its bytecode is this interpreter's, else compiled here from the file.

    Why the parent's: a process's first ``compile()`` builds the types of the ``ast``
    module (~1.5 ms, more than the compile itself), which ``python script.py`` never does;
    the parent has them already (it parses the script), so the child loads the code."""
    if compiled is not None and compiled[0] == BYTECODE:
        return marshal.loads(compiled[1])
    with open(path, "rb") as handle:
        source = handle.read()
    return compile(source, path, "exec", dont_inherit=True)


def load_script(path: str, name: str, compiled: "tuple[str, bytes] | None" = None) -> "Any":
    """Execute a script file as a new module named ``name`` (registered in ``sys.modules``,
    so that dataclasses and pickling inside it work); exceptions are the script's.
    ``compiled``: its code as :func:`script_code` takes it."""
    module = type(sys)(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(script_code(path, compiled), module.__dict__)
    return module


def import_script(request: "dict[str, Any]") -> "Any":
    """The script as a module: a module of its package when it is in one (relative imports
    work), else loaded from its file under its stem. The caller puts ``root`` (the
    script's folder, or its top package's parent) on ``sys.path``."""
    if request.get("package"):
        import importlib

        return importlib.import_module(request["module"])
    name = request["module"]
    name = name if name not in sys.modules else "_script_" + name
    return load_script(request["script"], name, request.get("code"))


def run_as_program(request: "dict[str, Any]") -> None:
    """``python script.py FLAGS`` (``python -m package.script FLAGS`` in a package): the
    script runs as ``__main__`` with the job arguments on its command line; a ``main()``
    with no ``__main__`` block to call it is called after."""
    saved_argv, saved_main = sys.argv, sys.modules.get("__main__")
    sys.argv = [request["script"], *request["argv"]]
    try:
        if request.get("package"):
            import runpy

            found = runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        else:
            module = type(sys)("__main__")
            module.__file__ = request["script"]
            sys.modules["__main__"] = module
            exec(script_code(request["script"], request.get("code")), module.__dict__)
            found = module.__dict__
        if not request.get("has_main_block") and callable(found.get("main")):
            found["main"]()
    finally:
        sys.argv = saved_argv
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


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
    """Run the script as the request says (``entry``: ``main`` imports it and calls
    ``main(input_paths, output_paths, environ_vars, job_args)``; ``program`` runs it as
    ``python script.py FLAGS``); a report of how far it got. Never raises for anything
    the script does."""
    sys.path[0] = request["root"]  # as `python script.py` (or `-m package.script`) has it
    if request["entry"] == "program":
        return {**_run_program(request), "entry": "program"}
    report: dict[str, Any] = {"ok": False, "phase": "import", "exit_code": None}
    started = time.perf_counter()
    try:
        module = import_script(request)
    except BaseException as exc:  # any failure of the user's module is what we report
        report.update(describe(exc))
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
            namespace(request["job_args"]),
        )
    except SystemExit as exc:
        report["run_seconds"] = time.perf_counter() - started
        if _exit_code(exc) != 0:
            report["exit_code"] = _exit_code(exc)
            report.update(describe(exc))
            return report
        returned = None
    except BaseException as exc:  # any failure of main is what we report
        report["run_seconds"] = time.perf_counter() - started
        report.update(describe(exc))
        return report
    report["run_seconds"] = time.perf_counter() - started
    report["value"] = repr(returned)[:2000]
    report.update(ok=True, phase="done")
    return report


def _run_program(request: "dict[str, Any]") -> "dict[str, Any]":
    report: dict[str, Any] = {"ok": False, "phase": "run", "exit_code": None}
    if not request["run"]:  # nothing to import without running it: a program is one piece
        report.update(ok=True, phase="done")
        return report
    started = time.perf_counter()
    try:
        run_as_program(request)
    except SystemExit as exc:
        report["run_seconds"] = time.perf_counter() - started
        if _exit_code(exc) != 0:
            report["exit_code"] = _exit_code(exc)
            report.update(describe(exc))
            return report
    except BaseException as exc:  # any failure of the program is what we report
        report["run_seconds"] = time.perf_counter() - started
        report.update(describe(exc))
        return report
    report["run_seconds"] = time.perf_counter() - started
    report.update(ok=True, phase="done")
    return report


# --- reports -----------------------------------------------------------------------------


def describe(exc: BaseException) -> "dict[str, str]":
    """An exception as report fields (type, message, traceback), its traceback starting at
    the user's code: the frames of this module and of the import machinery are left out."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return {"type": type(exc).__name__, "message": str(exc), "traceback": "".join(lines)}


def _ours(filename: str) -> bool:
    return filename == __file__ or filename.startswith("<frozen ") or filename.endswith("runpy.py")


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
    fork); None off Linux. Read with one ``posix.read``: a file object costs the child
    more than the read (~0.1 ms against ~0.04)."""
    try:
        fd = posix.open("/proc/self/status", posix.O_RDONLY)
    except OSError:  # not Linux: the parent falls back to wait4's figure
        return None
    try:
        status = posix.read(fd, 1 << 16)  # ~1.5 kB, read whole at once
    finally:
        posix.close(fd)
    for line in status.splitlines():
        if line.startswith(b"VmHWM:"):
            return int(line.split()[1]) * 1024
    return None
