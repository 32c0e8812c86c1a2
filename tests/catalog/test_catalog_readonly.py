"""The catalog on a read-only state folder (a shared checkout, a read-only mount): list,
show and search answer, built in memory, with one warning naming the index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stepkit import sandbox

STEPKIT = str(Path(sys.executable).with_name("stepkit"))


@pytest.fixture
def read_only_mounts() -> None:
    """A read-only mount (root ignores file modes, not a read-only mount) needs bwrap;
    under CI (``CI=true``) a sandbox that cannot run fails the test, locally it skips."""
    why = sandbox.unavailable()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs bwrap: {why}", pytrace=False)
    pytest.skip(why)


def on_read_only_state(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    state = project / ".stepkit"
    command = ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--ro-bind", str(state), str(state)]
    return subprocess.run(
        [*command, STEPKIT, "-p", str(project), *args], capture_output=True, text=True, timeout=120
    )


def test_list_show_and_search_answer_on_a_read_only_state_folder(
    read_only_mounts: None, example_project: Path, tmp_path: Path
) -> None:
    project = tmp_path / "churn"
    shutil.copytree(example_project, project, ignore=shutil.ignore_patterns(".stepkit"))
    assert (
        subprocess.run([STEPKIT, "-p", str(project), "catalog", "list", "--json"]).returncode == 0
    )
    index = project / ".stepkit" / "catalog" / "index.sqlite"
    before = index.read_bytes()
    script = project / "steps" / "scripts" / "model_packaging.py"
    script.rename(script.with_name("model_packing.py"))  # a change the stored index lacks

    listed = on_read_only_state(project, "catalog", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    warning = f"warning: the catalog index {index} cannot be written"
    assert listed.stderr.startswith(warning), listed.stderr
    assert "ModelPackaging" in listed.stdout

    shown = on_read_only_state(project, "catalog", "show", "ModelPackaging", "--json")
    assert shown.returncode == 0, shown.stderr
    assert "model_packaging.py" not in shown.stdout  # answered from the files as they are now
    found = on_read_only_state(project, "catalog", "search", "calibrate")
    assert found.returncode == 0 and "ModelCalibration" in found.stdout, found.stderr
    assert index.read_bytes() == before  # nothing written
