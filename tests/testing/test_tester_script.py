"""One script, tested in a child process: every bad input is a FAIL with its exact reason."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from stepkit.components import ScriptContract
from stepkit.testing import Status, Target, TestOptions
from stepkit.testing.checks import LOG_LIMIT_BYTES
from stepkit.testing.harness import KEEP_BYTES
from stepkit.testing.script import fast_import_check, run_test

Script = Callable[..., Path]
OUT = {"result": "/opt/ml/processing/output"}


@pytest.fixture
def script(tmp_path: Path) -> Callable[..., Path]:
    def write(body: str, name: str = "step.py") -> Path:
        path = tmp_path / "scripts" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
        return path

    return write


@pytest.fixture
def options(tmp_path: Path) -> TestOptions:
    (tmp_path / "runs").mkdir()
    return TestOptions(timeout=20, temp_root=tmp_path / "runs")


def contract(**fields: Any) -> ScriptContract:
    return ScriptContract(entry_point="step.py", **fields)


def gone(pid: int) -> bool:
    """Dead, or a zombie nobody has reaped yet (PID 1 of a container may not reap)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


WRITES_MARKER = """
    from pathlib import Path

    def main(input_paths, output_paths, environ_vars, job_args):
        for folder in output_paths.values():
            (Path(folder) / "marker").write_text("ok")
"""


def test_a_working_script_passes_and_its_temp_dir_is_removed(
    script: Script, options: TestOptions
) -> None:
    path = script(WRITES_MARKER)
    result = run_test(Target("step", path, contract(expected_output_paths=OUT)), options)
    assert result.status is Status.PASS, result.reason
    assert [c.name for c in result.checks] == ["import", "main", "signature", "run", "outputs"]
    assert result.temp_dir is None
    assert options.temp_root is not None and list(options.temp_root.iterdir()) == []
    assert result.peak_rss_bytes and result.peak_rss_bytes > 1_000_000
    assert not (path.parent / "__pycache__").exists()  # nothing written next to the script


def test_syntax_error(script: Script, options: TestOptions) -> None:
    path = script("def main(input_paths, output_paths\n    pass\n")
    result = run_test(Target("step", path, contract()), options)
    assert result.status is Status.FAIL
    assert result.reason == "import failed SyntaxError: '(' was never closed (step.py, line 1)"
    assert result.exception is not None and result.exception.type == "SyntaxError"


def test_an_error_only_compiling_finds_is_an_import_failure(
    script: Script, options: TestOptions
) -> None:
    path = script(
        "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\nreturn\n"
    )
    result = run_test(Target("step", path, contract()), options)
    assert result.status is Status.FAIL
    assert result.reason == "import failed SyntaxError: 'return' outside function (step.py, line 3)"


def test_a_script_in_another_encoding_runs_with_its_text(
    script: Script, options: TestOptions
) -> None:
    path = script("")
    path.write_bytes(
        b"# -*- coding: latin-1 -*-\n"
        b"def main(input_paths, output_paths, environ_vars, job_args):\n"
        b"    raise ValueError('caf\xe9')\n"
    )
    result = run_test(Target("step", path, contract()), options)
    assert result.reason == "main raised ValueError: café"


def test_no_main(script: Script, options: TestOptions) -> None:
    result = run_test(Target("step", script("X = 1\n"), contract()), options)
    assert (result.status, result.reason) == (Status.FAIL, "the script has no callable main")


@pytest.mark.parametrize(
    ("signature", "shown"),
    [
        ("input_paths, output_paths", "input_paths, output_paths"),
        ("a, b, c, d", "a, b, c, d"),
        (
            "input_paths, output_paths, environ_vars, job_args, logger, extra=1",
            "input_paths, output_paths, environ_vars, job_args, logger, extra",
        ),
    ],
)
def test_wrong_signature(script: Script, options: TestOptions, signature: str, shown: str) -> None:
    path = script(f"def main({signature}):\n    pass\n")
    result = run_test(Target("step", path, contract()), options)
    assert result.status is Status.FAIL
    assert result.reason == (
        f"main({shown}) must take (input_paths, output_paths, environ_vars, job_args)"
        " and at most an optional fifth parameter such as logger=None"
    )


def test_an_optional_fifth_logger_and_a_decorated_main_are_fine(
    script: Script, options: TestOptions
) -> None:
    path = script(
        """
        import functools

        def traced(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)
            return wrapper

        @traced
        def main(input_paths, output_paths, environ_vars, job_args, logger=None):
            pass
        """
    )
    assert run_test(Target("step", path, contract()), options).status is Status.PASS


def test_infinite_loop_times_out_and_the_process_tree_is_killed(
    script: Script, options: TestOptions, tmp_path: Path
) -> None:
    path = script(
        """
        import subprocess, sys

        def main(input_paths, output_paths, environ_vars, job_args):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            print(child.pid, flush=True)  # stdout: the sandbox lets it write nowhere else
            while True:
                pass
        """
    )
    fast = TestOptions(timeout=1.5, temp_root=options.temp_root)
    result = run_test(Target("step", path, contract()), fast)
    assert result.status is Status.FAIL
    assert result.reason == "timed out after 1.5 s (during import or run); killed 2 process(es)"
    assert result.stdout is not None
    assert gone(int(result.stdout.text.split()[0]))
    assert result.temp_dir is not None and result.temp_dir.is_dir()  # kept, for a look


def test_sys_exit_3(script: Script, options: TestOptions) -> None:
    path = script(
        "import sys\n\ndef main(input_paths, output_paths, environ_vars, job_args):\n"
        "    sys.exit(3)\n"
    )
    result = run_test(Target("step", path, contract()), options)
    assert (result.status, result.reason, result.exit_code) == (
        Status.FAIL,
        "called sys.exit(3)",
        3,
    )


def test_an_exception_is_reported_with_type_message_and_traceback(
    script: Script, options: TestOptions
) -> None:
    path = script(
        """
        def main(input_paths, output_paths, environ_vars, job_args):
            raise ValueError("no column 'label'")
        """
    )
    result = run_test(Target("step", path, contract()), options)
    assert result.reason == "main raised ValueError: no column 'label'"
    assert result.exception is not None
    assert result.exception.traceback.splitlines()[1].endswith('step.py", line 2, in main')


def test_stdin_is_closed(script: Script, options: TestOptions) -> None:
    path = script("def main(input_paths, output_paths, environ_vars, job_args):\n    input()\n")
    result = run_test(Target("step", path, contract()), options)
    assert result.reason == "main raised EOFError: EOF when reading a line"


def test_100_mb_on_stdout_is_captured_bounded(script: Script, options: TestOptions) -> None:
    path = script(
        """
        import sys

        def main(input_paths, output_paths, environ_vars, job_args):
            block = "x" * (1024 * 1024 - 1) + "\\n"
            for _ in range(100):
                sys.stdout.write(block)
            sys.stdout.write("the end\\n")
        """
    )
    result = run_test(Target("step", path, contract()), options)
    assert result.stdout is not None
    written = 100 * 1024 * 1024 + len("the end\n")
    assert result.stdout.total_bytes == written
    assert len(result.stdout.head) == len(result.stdout.tail) == KEEP_BYTES
    assert result.stdout.text.endswith("the end\n")
    assert result.status is Status.FAIL
    assert result.reason == (
        f"wrote {written} bytes to stdout (limit {LOG_LIMIT_BYTES}); "
        f"kept the first and last {KEEP_BYTES} and {KEEP_BYTES}"
    )


def test_a_child_that_outlives_the_script_fails_and_is_killed(
    script: Script, options: TestOptions, tmp_path: Path
) -> None:
    path = script(
        """
        import os, time

        def main(input_paths, output_paths, environ_vars, job_args):
            pid = os.fork()
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            print(pid, flush=True)
        """
    )
    result = run_test(Target("step", path, contract()), options)
    assert result.stdout is not None
    pid = int(result.stdout.text.split()[0])
    assert result.status is Status.FAIL
    assert result.reason.startswith(f"left 1 process(es) running after main returned ({pid} ")
    assert result.reason.endswith("); killed them")
    deadline = time.monotonic() + 5
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pid)


def test_missing_contract_is_an_import_check_only(script: Script, options: TestOptions) -> None:
    target = Target("step", script(WRITES_MARKER), no_contract_reason="step Step has no contract")
    result = run_test(target, options)
    assert result.status is Status.FAIL
    assert [(c.name, c.status) for c in result.checks[:3]] == [
        ("import", Status.PASS),
        ("main", Status.PASS),
        ("signature", Status.PASS),
    ]
    assert result.reason == "step Step has no contract: import check only, the script was not run"


def test_missing_script_is_an_error(tmp_path: Path, options: TestOptions) -> None:
    result = run_test(Target("step", tmp_path / "nope.py", contract()), options)
    assert result.status is Status.ERROR
    assert result.reason == f"script {tmp_path / 'nope.py'} does not exist"


def test_a_required_env_var_nobody_set_is_an_error(script: Script, options: TestOptions) -> None:
    target = Target("step", script(WRITES_MARKER), contract(required_env_vars=["LABEL_FIELD"]))
    result = run_test(target, options)
    assert result.status is Status.ERROR
    assert result.reason == (
        "required env var(s) LABEL_FIELD not set: pass --env LABEL_FIELD=… "
        "or set it under [test] env in stepkit.toml"
    )


def test_env_vars_come_from_cli_then_project_then_contract(
    script: Script, options: TestOptions, tmp_path: Path
) -> None:
    path = script(
        """
        import json, os
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            seen = {"vars": environ_vars, "os": os.environ["A"], "args": vars(job_args)}
            (Path(output_paths["result"]) / "seen.json").write_text(json.dumps(seen))
        """
    )
    target = Target(
        "step",
        path,
        contract(
            expected_output_paths=OUT,
            required_env_vars=["A"],
            optional_env_vars={"A": "contract", "B": "contract", "C": "contract"},
            expected_arguments={"job-type": "training"},
        ),
        job_type="calibration",
    )
    opts = TestOptions(
        env={"A": "cli"},
        project_env={"A": "toml", "B": "toml"},
        keep=True,
        temp_root=options.temp_root,
    )
    result = run_test(target, opts)
    assert result.status is Status.PASS, result.reason
    seen = (result.outputs["result"] / "seen.json").read_text()
    import json

    assert json.loads(seen) == {
        "vars": {"A": "cli", "B": "toml", "C": "contract"},
        "os": "cli",
        "args": {"job_type": "calibration"},
    }


def test_an_empty_or_missing_output_fails(script: Script, options: TestOptions) -> None:
    path = script("def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    outputs = {"model": "/opt/ml/model", "report": "/opt/ml/output/report.json"}
    result = run_test(Target("step", path, contract(expected_output_paths=outputs)), options)
    assert result.status is Status.FAIL
    assert result.temp_dir is not None
    model, report = result.outputs["model"], result.outputs["report"]
    assert report == result.temp_dir / "output" / "report" / "report.json"
    assert result.reason == (
        f"output 'model' is an empty folder ({model}); output 'report' was not written ({report})"
    )


def test_fast_import_check_runs_in_process(script: Script) -> None:
    good = fast_import_check(Target("step", script(WRITES_MARKER)))
    assert good.status is Status.PASS
    assert [c.name for c in good.checks] == ["import", "main", "signature"]
    bad = fast_import_check(Target("bad", script("def main(a):\n    pass\n", "bad.py")))
    assert bad.reason.startswith("main(a) must take")
    broken = fast_import_check(Target("broken", script("raise SystemExit(2)\n", "broken.py")))
    assert broken.reason == "import failed SystemExit: 2"
    assert "_stepkit_fast_broken" not in sys.modules
