"""The sandbox a test runs in: container paths mapped, network cut, the rest read-only —
and, without bubblewrap, pip and proxies off with a warning."""

from __future__ import annotations

import os
import site
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepkit import sandbox
from stepkit.cli.app import app
from stepkit.components import ScriptContract
from stepkit.testing import Status, Target, TestOptions
from stepkit.testing.script import run_test

IN = "/opt/ml/processing/input/data"
OUT = "/opt/ml/processing/output"


@pytest.fixture
def bwrap() -> None:
    """Under CI (``CI=true``) a sandbox that cannot run fails the test; locally it skips."""
    why = sandbox.unavailable()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs the sandbox: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture
def options(tmp_path: Path) -> TestOptions:
    (tmp_path / "runs").mkdir()
    return TestOptions(timeout=60, temp_root=tmp_path / "runs", keep=True)


def target(tmp_path: Path, body: str, **contract: object) -> Target:
    script = tmp_path / "scripts" / "step.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(textwrap.dedent(body).lstrip())
    return Target("step", script, ScriptContract(entry_point="step.py", **contract))


def test_a_program_reading_fixed_container_paths_runs_unchanged(
    bwrap: None, tmp_path: Path, options: TestOptions
) -> None:
    data = tmp_path / "data" / "data"
    data.mkdir(parents=True)
    (data / "part-0.csv").write_text("a,b\n1,2\n3,4\n")
    step = target(
        tmp_path,
        f"""
        import argparse, glob, os

        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("--job_type", required=True)
            args = parser.parse_args()
            rows = sum(len(open(f).readlines()) - 1 for f in glob.glob("{IN}/*.csv"))
            with open(os.path.join("{OUT}", "summary.txt"), "w") as handle:
                handle.write(f"{{args.job_type}}: {{rows}} rows")

        if __name__ == "__main__":
            main()
        """,
        expected_input_paths={"data": IN},
        expected_output_paths={"summary": OUT},
        job_arguments=[{"flag": "--job_type", "source": "job_type"}],
    )
    test = Target(step.name, step.script, step.contract, job_type="training")
    result = run_test(test, options, data=tmp_path / "data")
    assert result.status is Status.PASS, (result.reason, result.stderr)
    assert (result.outputs["summary"] / "summary.txt").read_text() == "training: 2 rows"


def test_a_folder_given_a_container_path_keeps_what_it_held_read_only(
    bwrap: None, tmp_path: Path, options: TestOptions
) -> None:
    base = tmp_path / "opt"  # as /opt, which gets /opt/ml/...
    (base / "tool").mkdir(parents=True)
    (base / "tool" / "version.txt").write_text("1.2")
    (base / "current").symlink_to("tool")
    step = target(
        tmp_path,
        f"""
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            seen = sorted(e for e in os.listdir("{base}") if not e.startswith("."))
            version = open("{base}/current/version.txt").read()
            try:
                open("{base}/tool/new.txt", "w")
            except OSError as exc:
                version += f" ({{exc.strerror}})"
            with open(os.path.join(output_paths["out"], "seen.txt"), "w") as handle:
                handle.write(f"{{seen}} {{version}}")
        """,
        expected_output_paths={"out": f"{base}/ml/output"},
    )
    result = run_test(step, options)
    assert result.status is Status.PASS, (result.reason, result.stderr)
    seen = (result.outputs["out"] / "seen.txt").read_text()
    assert seen == "['current', 'ml', 'tool'] 1.2 (Read-only file system)"
    assert sorted(p.name for p in base.iterdir()) == ["current", "tool"]  # nothing made here


def test_a_script_that_pip_installs_at_import_fails_and_leaves_the_venv_alone(
    bwrap: None, tmp_path: Path, options: TestOptions
) -> None:
    site_packages = Path(site.getsitepackages()[0])
    before = sorted(p.name for p in site_packages.iterdir())
    step = target(
        tmp_path,
        """
        import site, subprocess, sys
        # what 16 of the framework's scripts do: rewrite the interpreter's packages
        open(site.getsitepackages()[0] + "/stepkit_sandbox_probe.pth", "w").write("x")
        subprocess.check_call([sys.executable, "-m", "pip", "install", "six==1.10.0"])

        def main(input_paths, output_paths, environ_vars, job_args):
            pass
        """,
    )
    result = run_test(step, options)
    assert result.status is Status.FAIL
    assert result.reason == (
        "import failed OSError: [Errno 30] Read-only file system: "
        f"'{site_packages / 'stepkit_sandbox_probe.pth'}' "
        "(the sandbox keeps everything outside the test folders read-only)"
    )
    assert sorted(p.name for p in site_packages.iterdir()) == before


def test_pip_alone_fails_at_once_with_a_reason_naming_the_package(
    bwrap: None, tmp_path: Path, options: TestOptions
) -> None:
    step = target(
        tmp_path,
        """
        import subprocess, sys
        subprocess.check_call([sys.executable, "-m", "pip", "install", "six==1.10.0"])

        def main(input_paths, output_paths, environ_vars, job_args):
            pass
        """,
    )
    result = run_test(step, options)
    assert result.status is Status.FAIL
    assert result.reason.startswith("import failed CalledProcessError: Command ")
    assert "(pip is disabled in tests (no index, no network): " in result.reason
    assert "six==1.10.0" in result.reason


def test_a_script_calling_a_service_fails_with_the_network_cut(
    bwrap: None, tmp_path: Path, options: TestOptions
) -> None:
    step = target(
        tmp_path,
        """
        import socket

        def main(input_paths, output_paths, environ_vars, job_args):
            socket.create_connection(("192.0.2.1", 443), timeout=5)
        """,
    )
    result = run_test(step, options)
    assert result.status is Status.FAIL
    assert result.reason == (
        "main raised OSError: [Errno 101] Network is unreachable (the sandbox cuts the network)"
    )


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A machine without bwrap: PATH holds only a folder with python in it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    sandbox.unavailable.cache_clear()
    yield
    sandbox.unavailable.cache_clear()


def test_without_bwrap_pip_and_proxies_are_off_and_the_cli_warns(
    no_bwrap: None, write_project: object, tmp_path: Path
) -> None:
    assert sandbox.unavailable() == "bwrap is not installed (Debian: apt-get install bubblewrap)"
    script = tmp_path / "env.py"
    script.write_text(
        "import os\n"
        "print(os.environ['PIP_NO_INDEX'], os.environ['HTTPS_PROXY'])\n"
        "def main(input_paths, output_paths, environ_vars, job_args):\n"
        "    pass\n"
    )
    done = CliRunner().invoke(app, ["test", "script", str(script), "--json"])
    assert done.stderr.startswith(
        "warning: the sandbox is off: bwrap is not installed (Debian: apt-get install "
        "bubblewrap); container paths are not mapped, pip and proxies are disabled through "
        "the environment"
    )
    assert '"text": "1 http://127.0.0.1:9\\n"' in done.stdout


def test_no_sandbox_is_asked_for_and_not_warned_about(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text("def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    done = CliRunner().invoke(app, ["test", "script", str(script), "--no-sandbox"])
    assert "warning" not in done.stderr
