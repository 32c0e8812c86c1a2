"""The one child protocol: a request in, the user code's output captured, one report back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from stepkit.child import _site_hooks, command, script_entry
from stepkit.processes import ChildRun, run_child
from stepkit.sandbox import unavailable


def _script(tmp_path: Path, body: str, **over: Any) -> tuple[ChildRun, dict[str, bytes]]:
    script = tmp_path / "step.py"
    script.write_text(textwrap.dedent(body).lstrip())
    (tmp_path / "out").mkdir(exist_ok=True)
    request: dict[str, Any] = {
        "kind": "script",
        **script_entry(str(script)),
        "argv": [],
        "run": True,
        "input_paths": {"DATA": str(tmp_path / "in")},
        "output_paths": {"out": str(tmp_path / "out")},
        "environ_vars": {"LABEL_FIELD": "y"},
        "job_args": {"job_type": "training"},
        **over,
    }
    seen = {"stdout": b"", "stderr": b""}

    def output(stream: str, chunk: bytes) -> None:
        seen[stream] += chunk

    return run_child(request, output=output, timeout=30, cwd=str(tmp_path)), seen


def test_a_script_gets_its_folders_env_and_job_arguments(tmp_path: Path) -> None:
    ran, seen = _script(
        tmp_path,
        """
        from pathlib import Path
        print("hello")
        def main(input_paths, output_paths, environ_vars, job_args):
            text = environ_vars["LABEL_FIELD"] + job_args.job_type + type(job_args).__name__
            Path(output_paths["out"], "x.txt").write_text(text)
            return {"rows": 3}
        """,
    )
    assert ran.returncode == 0 and ran.report is not None, seen
    assert (tmp_path / "out/x.txt").read_text() == "ytrainingSimpleNamespace"
    assert (ran.report["ok"], ran.report["phase"], ran.report["value"]) == (
        True,
        "done",
        "{'rows': 3}",
    )
    assert seen["stdout"] == b"hello\n"
    assert ran.peak_rss is not None and ran.peak_rss > 1_000_000


def test_a_script_that_uses_argparse_gets_an_argparse_namespace(tmp_path: Path) -> None:
    ran, seen = _script(
        tmp_path,
        """
        import argparse
        def main(input_paths, output_paths, environ_vars, job_args):
            assert isinstance(job_args, argparse.Namespace) and "job_type" in job_args
            print(vars(job_args))
        """,
    )
    assert ran.report is not None and ran.report["ok"], seen
    assert seen["stdout"] == b"{'job_type': 'training'}\n"


def test_a_scripts_failure_is_reported_with_its_type_and_traceback(tmp_path: Path) -> None:
    ran, _ = _script(
        tmp_path,
        "def main(input_paths, output_paths, environ_vars, job_args):\n    raise ValueError('bad rows')\n",
    )
    assert ran.report is not None
    assert (ran.report["ok"], ran.report["phase"], ran.report["type"]) == (
        False,
        "run",
        "ValueError",
    )
    assert ran.report["message"] == "bad rows"
    assert 'step.py", line 2, in main' in ran.report["traceback"]
    assert "stepkit" not in ran.report["traceback"]  # it starts at the user's code


def test_a_scripts_exit_status_is_the_childs(tmp_path: Path) -> None:
    ran, _ = _script(
        tmp_path,
        "import sys\ndef main(input_paths, output_paths, environ_vars, job_args):\n    sys.exit(3)\n",
    )
    assert ran.returncode == 3
    assert ran.report is not None and ran.report["exit_code"] == 3


def test_the_child_loads_only_its_own_module_of_stepkit(tmp_path: Path) -> None:
    ran, seen = _script(
        tmp_path,
        """
        import sys
        def main(input_paths, output_paths, environ_vars, job_args):
            print(" ".join(sorted(m for m in sys.modules if m.startswith("stepkit"))))
        """,
    )
    assert ran.report is not None and ran.report["ok"], seen
    assert seen["stdout"].split() == [b"stepkit.child"]


def test_a_child_that_dies_before_reporting_is_no_report_and_its_stderr(tmp_path: Path) -> None:
    seen: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def output(stream: str, chunk: bytes) -> None:
        seen[stream] += chunk

    ran = run_child({"kind": "script"}, output=output, timeout=30, cwd=str(tmp_path))
    assert ran.report is None and ran.returncode == 1
    assert b"KeyError: 'root'" in seen["stderr"]  # a request without its fields


def test_a_stage_child_skips_site_and_a_script_child_does_not() -> None:
    if not _site_hooks():  # an editable install's finder needs site: then no -S
        assert command("stage")[1:3] == ["-S", "-c"]
    assert command("script")[1] == "-c"


# -- the child dies with its parent -------------------------------------------------------

#: A tester in a process of its own: runs SCRIPT (sandboxed when asked) in WORK.
TESTER = """
import sys
from pathlib import Path
from stepkit.sandbox import Sandbox
from stepkit.testing.harness import ChildJob, run_script
script, work, sandboxed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
sandbox = Sandbox(writable=(str(work),), mounts={}) if sandboxed else None
run_script(ChildJob(script=script, workdir=work, sandbox=sandbox, timeout=600))
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # nobody reaped it yet
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, *, within: float = 30.0) -> bool:
    """Whether ``pid`` is gone (or a zombie) within ``within`` seconds: a bound on a wait,
    not a measured time."""
    deadline = time.monotonic() + within
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("sandboxed", [False, True], ids=["plain", "sandboxed"])
def test_a_script_under_test_dies_when_its_tester_is_killed(
    tmp_path: Path, sandboxed: bool
) -> None:
    if sandboxed and unavailable():
        pytest.skip(f"the sandbox cannot run here: {unavailable()}")
    script = tmp_path / "slow.py"
    script.write_text(
        "import os, time\n"
        "def main(input_paths, output_paths, environ_vars, job_args):\n"
        f"    open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
    )
    tester = subprocess.Popen(
        [sys.executable, "-c", TESTER, str(script), str(tmp_path), "1" if sandboxed else "0"]
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
        assert tester.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    pid = int((tmp_path / "pid").read_text())
    os.kill(tester.pid, signal.SIGKILL)
    tester.wait()
    try:
        assert wait_gone(pid), f"the script (pid {pid}) outlived its tester"
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_child_whose_parent_died_before_it_asked_exits_at_once(tmp_path: Path) -> None:
    """The race the check closes: the parent died between the fork and the prctl call, so
    the child's parent is no longer the one the request names."""
    probe = (
        "import os, sys\n"
        "from stepkit.child import die_with_parent\n"
        "die_with_parent(int(sys.argv[1]))\n"
        "print('still here')\n"
    )
    other = subprocess.run([sys.executable, "-c", probe, "1"], capture_output=True, check=False)
    assert (other.returncode, other.stdout) == (70, b"")
    mine = subprocess.run(
        [sys.executable, "-c", probe, str(os.getpid())], capture_output=True, check=False
    )
    assert (mine.returncode, mine.stdout) == (0, b"still here\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_asks_the_kernel_for_sigkill_when_its_parent_dies(tmp_path: Path) -> None:
    ran, seen = _script(
        tmp_path,
        """
        import ctypes
        def main(input_paths, output_paths, environ_vars, job_args):
            signal = ctypes.c_int()
            ctypes.CDLL(None).prctl(2, ctypes.byref(signal))  # PR_GET_PDEATHSIG
            print(signal.value)
        """,
    )
    assert ran.report is not None and ran.report["ok"], seen
    assert seen["stdout"] == b"9\n"  # SIGKILL


#: A runner of its own: a worker pool whose two workers each write their pid and hang.
POOL_RUNNER = """
import os, sys, time
from stepkit.processes import worker_pool
def hang(folder):
    open(os.path.join(folder, str(os.getpid())), "w").close()
    time.sleep(600)
if __name__ == "__main__":
    pool = worker_pool(2)
    futures = [pool.submit(hang, sys.argv[1]) for _ in range(2)]
    time.sleep(600)
"""


def test_process_pool_workers_die_when_their_runner_is_killed(tmp_path: Path) -> None:
    (tmp_path / "runner.py").write_text(POOL_RUNNER)
    pids = tmp_path / "pids"
    pids.mkdir()
    runner = subprocess.Popen([sys.executable, str(tmp_path / "runner.py"), str(pids)])
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 2:
        assert runner.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    workers = [int(p.name) for p in pids.iterdir()]
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    try:
        assert [pid for pid in workers if not wait_gone(pid)] == []
    finally:
        for pid in workers:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_start_of_a_request_is_written_before_the_child_reads_it() -> None:
    """A spare's start (stepkit's modules, compiled) can outgrow a pipe's 64 KiB: starting
    it must not wait for the child's interpreter to come up and read."""
    import threading

    from stepkit import child as child_module
    from stepkit.processes import start_child

    modules = ("stepkit.pipeline.context", "stepkit.pipeline.invoke", "stepkit.processes")
    size = sum(len(child_module.compiled(m)[2]) for m in ("stepkit.child", *modules))
    assert size > 64 * 1024  # else this test proves nothing
    started: list[Any] = []
    late = ["sh", "-c", 'sleep 60; exec "$@"', "sh"]  # reads its stdin a minute late
    starting = threading.Thread(
        target=lambda: started.append(start_child("stage", modules=modules, wrap=late))
    )
    starting.start()
    starting.join(timeout=20)
    try:
        assert not starting.is_alive(), "start_child waited for the child to read its start"
    finally:
        starting.join()
        for spare in started:
            spare.discard()
