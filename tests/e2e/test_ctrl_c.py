"""Ctrl-C typed at a terminal stops ``stepkit run`` the same way in every output mode: the
run is recorded ``cancelled``, its temp folders are gone, and the resume command is printed.

The CLI runs on a pseudo-terminal as its controlling terminal, and the test types ^C into
it: the terminal, not the test, sends SIGINT to the foreground process group.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from stepkit import Project
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus
from stepkit.state.records import latest_attempts

STEPKIT = str(Path(sys.executable).parent / "stepkit")

HANG = """\
import os
import time
from pathlib import Path


def main(input_paths, output_paths, environ_vars, job_args):
    Path({marker!r}).write_text(str(os.getpid()))
    time.sleep(120)
"""


def _read_until_exit(fd: int, pid: int, *, seconds: float) -> tuple[str, int]:
    """Everything the terminal shows until the process exits, and its exit status."""
    out = b""
    deadline = time.monotonic() + seconds
    closed = False
    while time.monotonic() < deadline:
        if not closed and select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                chunk = b""
            out += chunk
            closed = not chunk
        elif closed:
            time.sleep(0.05)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            while not closed and select.select([fd], [], [], 0.2)[0]:  # what is still buffered
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                out += chunk
                closed = not chunk
            return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"stepkit did not exit after ^C; the terminal showed:\n{out!r}")


@pytest.mark.parametrize("mode", [[], ["--json"]], ids=["live-view", "json"])
def test_ctrl_c_at_a_terminal_cancels_records_cleans_up_and_prints_the_resume_command(
    tiny_project: Path, tmp_path: Path, mode: list[str]
) -> None:
    marker = tmp_path / "make.pid"
    (tiny_project / "steps/scripts/make.py").write_text(HANG.format(marker=str(marker)))
    temp = tmp_path / "tmp"
    temp.mkdir()
    argv = [STEPKIT, "-p", str(tiny_project), "run", str(tiny_project / "dag.yaml"), *mode]
    env = {**os.environ, "TMPDIR": str(temp), "COLUMNS": "100", "TERM": "xterm"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        os.chdir(tmp_path)
        os.execve(STEPKIT, argv, env)
    try:
        deadline = time.monotonic() + 60
        shown = b""
        while not marker.exists():
            assert time.monotonic() < deadline, shown
            if select.select([fd], [], [], 0.05)[0]:
                shown += os.read(fd, 65536)
        os.write(fd, b"\x03")  # ^C, typed at the terminal
        out, code = _read_until_exit(fd, pid, seconds=60)
    finally:
        os.close(fd)
    assert code == 130, out
    project = Project.load(tiny_project)
    state = SQLiteStateRepository.for_project(project)
    try:
        (run,) = state.list_runs()
        assert run.status == RunStatus.CANCELLED
        latest = latest_attempts(state.stage_records(run.run_id))
    finally:
        state.close()
    assert latest["Make"].status == StageStatus.CANCELLED
    assert {latest["Double"].status, latest["Report"].status} == {StageStatus.SKIPPED}
    flat = " ".join(out.split())
    assert f"Run {run.run_id} cancelled; resume it with: " in flat
    assert f"stepkit -p {tiny_project} runs resume {run.run_id}" in flat
    # after the live view's last redraw, which would wipe lines printed before it
    assert out.rfind("resume it with") > max(out.rfind("┘"), out.rfind("\x1b[1A"))
    assert list(temp.iterdir()) == []  # no temp folder left behind
