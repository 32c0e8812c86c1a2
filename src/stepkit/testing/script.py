"""Testing one script: its inputs, environment and arguments, the child run, the checks.

The core, :func:`run_test`, takes a resolved :class:`~stepkit.testing.lookup.Target`
(script, contract, spec) and does the three things that matter: the script imports, it
has a ``main`` that takes the four standard arguments, and it runs on data and writes the
outputs its contract promises. Everything user-written runs in a child process
(:mod:`stepkit.testing.harness`); only :func:`fast_import_check` imports in-process, and
only when asked to.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.plan.node import program_argv
from stepkit.sandbox import Sandbox, unavailable
from stepkit.testing.checks import Check, ExceptionInfo, ScriptResult, Status, judge, status_of
from stepkit.testing.harness import Captured, ChildJob, run_script
from stepkit.testing.lookup import Target
from stepkit.testing.synthetic import (
    copy_input,
    input_kind,
    input_shape,
    local_path,
    synthesize,
)

if TYPE_CHECKING:
    from stepkit.components import ScriptContract
    from stepkit.envs import Environment, StepEnvironments


@dataclass(frozen=True, slots=True)
class TestOptions:
    """How scripts are tested; the same for every script of one tester."""

    __test__ = False  # not a pytest class

    timeout: float = 300.0
    rows: int = 100
    seed: int = 0
    env: Mapping[str, str] = field(default_factory=dict)  # --env: wins over everything
    project_env: Mapping[str, str] = field(default_factory=dict)  # [test] env in stepkit.toml
    args: Mapping[str, str] = field(default_factory=dict)  # --arg: wins over everything
    project_args: Mapping[str, str] = field(default_factory=dict)  # [test] args in stepkit.toml
    sandbox: bool = True  # bubblewrap where it works (stepkit.sandbox); False: --no-sandbox
    keep: bool = False
    temp_root: Path | None = None  # where test folders are made (default: the system's)
    environments: StepEnvironments | None = None  # per-step environments; None: shared


@dataclass(frozen=True, slots=True)
class Seed:
    """A file or folder given for one input: ``test pipeline --data NODE.INPUT=PATH``, or
    the step's sample data."""

    path: Path
    what: str  # "data": as the result shows where the input came from


@dataclass(frozen=True, slots=True)
class Wired:
    """An input a pipeline step gets from an upstream step's output."""

    path: Path
    source: str  # "Node.output", as the result shows it


def resolve_environ(target: Target, options: TestOptions) -> tuple[dict[str, str], list[str]]:
    """The env vars a script gets (contract defaults < stepkit.toml < --env) and the
    required ones nobody set."""
    contract = target.contract
    environ = dict(contract.optional_env_vars) if contract else {}
    environ.update(options.project_env)
    environ.update(options.env)
    required = contract.required_env_vars if contract else []
    return environ, [name for name in required if name not in environ]


@dataclass(frozen=True, slots=True)
class JobArguments:
    """The job arguments a script gets, as attributes and as the flags of its command line,
    and the declared ones nobody gave a value."""

    values: dict[str, str]
    argv: tuple[str, ...]
    missing: tuple[str, ...]  # "job_type (--job_type)"


def job_arguments(target: Target, options: TestOptions) -> JobArguments:
    """What the script's own parser would have produced: ``--arg`` < ``[test] args`` <
    the node's job type < nothing (:meth:`ScriptContract.argument_values`)."""
    given = {**options.project_args, **options.args}
    contract = target.contract
    if contract is None:
        values = {name.lstrip("-").replace("-", "_"): v for name, v in given.items()}
        return JobArguments(values, tuple(program_argv(values, {})), ())
    declared = contract.declared_arguments()
    values = contract.argument_values(job_type=target.job_type, given=given)
    missing = tuple(f"{dest} ({arg.flag})" for dest, arg in declared.items() if dest not in values)
    return JobArguments(
        values, tuple(program_argv(values, {d: a.flag for d, a in declared.items()})), missing
    )


def _prepare_inputs(
    target: Target,
    root: Path,
    *,
    options: TestOptions,
    environ: Mapping[str, str],
    data: Path | None,
    wired: Mapping[str, Wired],
    seeds: Mapping[str, Seed],
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Input paths for the child, where each came from, and problems (missing ``--data``).

    Each input comes from the first of: a seed (a file or folder given for it), the
    upstream output wired to it, the ``--data`` folder — which leaves an optional input it
    lacks absent: its path is passed but nothing is there — the step's sample data
    (:func:`~stepkit.testing.lookup.sample_inputs`), and synthetic data shaped as the
    contract and spec declare.
    """
    assert target.contract is not None  # callers test the contract first
    paths: dict[str, str] = {}
    origin: dict[str, str] = {}
    problems: list[str] = []
    dependencies = target.spec.dependencies if target.spec else {}
    for logical, container_path in target.contract.expected_input_paths.items():
        local = local_path(root, logical, container_path)
        dependency = dependencies.get(logical)
        if logical in seeds:
            seed = seeds[logical]
            if not seed.path.exists():
                problems.append(f"{seed.what} {seed.path} does not exist")
                continue
            copy_input(seed.path, local)
            paths[logical] = str(local)
            origin[logical] = f"{seed.what} {seed.path}"
            continue
        if logical in wired:
            upstream = wired[logical]
            given = upstream.path / local.name if local.suffix else upstream.path
            paths[logical] = str(given if given.exists() else upstream.path)
            origin[logical] = f"from {upstream.source}"
            continue
        if data is not None:
            source = data / logical
            if source.exists():
                copy_input(source, local)
                paths[logical] = str(local)
                origin[logical] = f"data {source}"
            elif dependency is None or dependency.required:
                from stepkit.names import close_matches

                found = sorted(p.name for p in data.iterdir() if p.is_dir())
                close = close_matches(logical, found)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                problems.append(
                    f"--data {data} has no folder {logical!r} for a required input "
                    f"(has: {', '.join(found) or 'nothing'}).{hint}"
                )
            else:  # optional and not given: absent, as in a job that was given no such input
                paths[logical] = str(local)
                origin[logical] = f"absent (not in --data {data})"
            continue
        if logical in target.samples:  # the sample data that ships with the step
            copy_input(target.samples[logical], local)
            paths[logical] = str(local)
            origin[logical] = f"sample {target.samples[logical]}"
            continue
        kind = input_kind(logical, container_path, dependency)
        shape = input_shape(dependency) if kind == "csv" else "table"
        channels = target.contract.channels.get(logical, ())
        synthesize(
            local,
            kind,
            rows=options.rows,
            seed=options.seed,
            environ=environ,
            shape=shape,
            channels=channels,
            job_type=target.job_type,
        )
        paths[logical] = str(local)
        details: list[str] = [shape] if shape != "table" else []
        details += [f"channels {', '.join(channels)}"] if channels else []
        origin[logical] = f"synthetic {kind}" + (f" ({'; '.join(details)})" if details else "")
    return paths, origin, problems


def _sandboxed(
    root: Path,
    contract: ScriptContract,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
) -> tuple[Sandbox, dict[str, str], dict[str, str]]:
    """A sandbox with each container path on its local folder (:meth:`Sandbox.mapping`);
    an absent input is not mounted, so its container path holds nothing."""
    present = {k: v for k, v in inputs.items() if Path(v).exists()}
    sandbox, seen_in, seen_out = Sandbox.mapping(
        str(root),
        inputs={k: (contract.expected_input_paths[k], v) for k, v in present.items()},
        outputs={k: (contract.expected_output_paths[k], v) for k, v in outputs.items()},
    )
    absent = {k: contract.expected_input_paths[k] for k in inputs if k not in present}
    return sandbox, {**seen_in, **absent}, seen_out


def run_test(
    target: Target,
    options: TestOptions,
    *,
    data: Path | None = None,
    wired: Mapping[str, Wired] | None = None,
    seeds: Mapping[str, Seed] | None = None,
    workdir: Path | None = None,
) -> ScriptResult:
    """Test one resolved script in a child process.

    With ``workdir`` the caller owns the folder (a pipeline keeps every step's outputs);
    otherwise a temp folder is made and removed after a passing test unless ``keep``.
    """
    if target.script is None or not target.script.is_file():
        why = target.no_script_reason or f"script {target.script} does not exist"
        return ScriptResult(target.name, Status.ERROR, (Check("script", Status.ERROR, why),))
    environment, problem = _environment(target, options)
    if problem is not None:
        return ScriptResult(target.name, Status.ERROR, (problem,), script=target.script)
    owned = workdir is None
    root = workdir or Path(
        tempfile.mkdtemp(prefix=f"stepkit-test-{target.name}-", dir=options.temp_root)
    )
    extra: list[Check] = []
    if environment is not None:  # which one, for the record (--json)
        where = f"Python {environment.python_version}, environment {environment.key}"
        extra.append(Check("environment", Status.PASS, where))
    environ, missing = resolve_environ(target, options)
    arguments = job_arguments(target, options)
    inputs: dict[str, str] = {}
    origin: dict[str, str] = {}
    outputs: dict[str, Path] = {}
    run = target.contract is not None
    if target.contract is None:
        extra.append(
            Check(
                "contract",
                Status.FAIL,
                f"{target.no_contract_reason}: import check only, the script was not run",
            )
        )
    elif missing:
        run = False
        names = ", ".join(missing)
        extra.append(
            Check(
                "env",
                Status.ERROR,
                f"required env var(s) {names} not set: pass --env {missing[0]}=… "
                "or set it under [test] env in stepkit.toml",
            )
        )
    else:
        inputs, origin, problems = _prepare_inputs(
            target,
            root / "input",
            options=options,
            environ=environ,
            data=data,
            wired=wired or {},
            seeds=seeds or {},
        )
        problems += target.sample_problems
        if problems:
            run = False
            extra.append(Check("data", Status.ERROR, "; ".join(problems)))
        for logical, container_path in target.contract.expected_output_paths.items():
            local = local_path(root / "output", logical, container_path)
            (local.parent if local.suffix else local).mkdir(parents=True, exist_ok=True)
            outputs[logical] = local
    output_paths = {k: str(v) for k, v in outputs.items()}
    sandbox = None
    if options.sandbox and unavailable() is None and target.contract is not None:
        sandbox, inputs, output_paths = _sandboxed(root, target.contract, inputs, output_paths)
    outcome = run_script(
        ChildJob(
            script=target.script,
            workdir=root,
            run=run,
            input_paths=inputs,
            output_paths=output_paths,
            environ=environ,
            job_args=arguments.values,
            argv=arguments.argv,
            source_dir=target.contract.source_dir if target.contract else None,
            sandbox=sandbox,
            timeout=options.timeout,
            python=environment.python if environment is not None else None,
        )
    )
    checks, exception = judge(
        outcome,
        timeout=options.timeout,
        outputs=outputs,
        ran=run,
        missing=arguments.missing,
        sandboxed=sandbox is not None,
    )
    checks = _explained(target, [*checks, *extra], exception, outcome.stdout, outcome.stderr)
    status = status_of(checks)
    kept: Path | None = root
    if owned and (status is Status.PASS or not run) and not options.keep:
        shutil.rmtree(root, ignore_errors=True)
        kept = None
    return ScriptResult(
        name=target.name,
        status=status,
        checks=tuple(checks),
        script=target.script,
        exit_code=outcome.returncode,
        exception=exception,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        wall_seconds=outcome.wall_seconds,
        peak_rss_bytes=outcome.peak_rss_bytes,
        inputs=origin,
        outputs=outputs,
        temp_dir=kept,
    )


def _environment(target: Target, options: TestOptions) -> tuple[Environment | None, Check | None]:
    """The step's own environment (per-step mode; built now, before any sandbox, if
    missing), or None for stepkit's own; or the check that says why it cannot be built."""
    if options.environments is None or target.contract is None:
        return None, None
    from stepkit.errors import StepkitError

    try:
        environment = options.environments.environment(target.contract)
    except StepkitError as exc:
        return None, Check("environment", Status.ERROR, str(exc))
    return environment, None


def _explained(
    target: Target,
    checks: list[Check],
    exception: ExceptionInfo | None,
    stdout: Captured,
    stderr: Captured,
) -> list[Check]:
    """The checks with reasons that say what really went wrong:

    - ``main`` failed and it reads a key the contract does not declare
      (:mod:`~stepkit.testing.alignment`): the reason names that read first;
    - outputs are missing and the script logged an error: its last error line is added;
    - the import failed while a required env var was missing too: the import's FAIL is
      the result, the env var a note (the test could run no further either way).
    """
    failed = next((c for c in checks if c.status is not Status.PASS), None)
    if failed is None:
        return checks
    reason = failed.reason
    if failed.name == "run" and exception is not None and target.contract is not None:
        from stepkit.testing.alignment import mismatches

        assert target.script is not None  # a test without a script never runs
        found = mismatches(target.script, target.contract, target.spec)
        undeclared = [m for m in found if m.kind == "undeclared"]
        # the read the failure went through: its line in main's frame, else its name
        where = f'"{target.script}", line '
        named = [m for m in undeclared if f"{where}{m.line}," in exception.traceback]
        named = named or [m for m in undeclared if repr(m.name) in exception.message]
        if named or undeclared:
            mismatch = (named or undeclared)[0]
            reason = f"{mismatch} ({mismatch.script.name}:{mismatch.line}), so {reason}"
    elif failed.name == "outputs":
        logged = _last_error_line(stderr.text) or _last_error_line(stdout.text)
        if logged:
            reason = f"{reason}; the script logged: {logged}"
    env = next((c for c in checks if c.name == "env" and c.status is Status.ERROR), None)
    if env is not None and failed.name in ("import", "main", "signature"):
        reason = f"{reason} (also: {env.reason})"
        checks = [c for c in checks if c is not env]
    return [Check(c.name, c.status, reason) if c is failed else c for c in checks]


_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|FATAL)\b")


def _last_error_line(text: str) -> str:
    """The last line of a log that reports an error (``ERROR:root:…``, ``… - ERROR - …``)."""
    for line in reversed(text.splitlines()):
        if _ERROR_LINE.search(line):
            return line.strip()[-300:]
    return ""


def fast_import_check(target: Target) -> ScriptResult:
    """Import the script *in this process* and check ``main``: no isolation, no run.

    Nothing is written (no bytecode) and the module does not stay in ``sys.modules``; what
    it prints while being imported is swallowed. Use it on trusted code only.
    """
    from stepkit.child import signature_problem

    script = target.script
    if script is None or not script.is_file():
        why = target.no_script_reason or f"script {script} does not exist"
        return ScriptResult(target.name, Status.ERROR, (Check("script", Status.ERROR, why),))
    started = time.perf_counter()
    name = f"_stepkit_fast_{script.stem}"
    module = type(sys)(name)
    module.__file__ = str(script)
    checks = []
    sys.modules[name] = module
    try:
        code = compile(script.read_bytes(), str(script), "exec")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(code, module.__dict__)
    except BaseException as exc:  # whatever the script raises is the import check's result
        if isinstance(exc, KeyboardInterrupt):
            raise
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        checks.append(Check("import", Status.FAIL, f"import failed {first}"))
    finally:
        sys.modules.pop(name, None)
    if not checks:
        checks.append(Check("import", Status.PASS))
        main = module.__dict__.get("main")
        if main is None or not callable(main):
            checks.append(Check("main", Status.FAIL, "the script has no callable main"))
        else:
            checks.append(Check("main", Status.PASS))
            problem = signature_problem(main)
            checks.append(
                Check("signature", Status.FAIL, problem)
                if problem
                else Check("signature", Status.PASS)
            )
    return ScriptResult(
        name=target.name,
        status=status_of(checks),
        checks=tuple(checks),
        script=script,
        wall_seconds=time.perf_counter() - started,
    )
