"""The environment mode setting, the cache key's environment part, and the child protocol
on another interpreter — none of which builds an environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import WriteProject

from envs.conftest import require_interpreter
from stepkit.envs import StepEnvironments, check_env_mode
from stepkit.errors import EnvModeError, ProjectFileError
from stepkit.plan.cachekey import cache_key, changed_parts
from stepkit.plan.execute import RunOptions
from stepkit.processes import run_child
from stepkit.project import Project

TOML = """
    [project]
    name = "modes"

    [[workspaces]]
    id = "core"
    path = "steps"

    [run]
    environments_dir = "envs"
"""


def project(write_project: WriteProject, extra: str = "") -> Project:
    root = write_project({"stepkit.toml": TOML + extra, "steps/.keep": ""})
    return Project.load(root)


def test_the_mode_comes_from_the_project_unless_given(
    write_project: WriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = project(write_project)
    assert shared.run.environments == "shared"
    assert StepEnvironments.for_mode(shared) is None
    per_step = StepEnvironments.for_mode(shared, "per-step")
    assert per_step is not None and per_step.store.root == shared.root / "envs"

    monkeypatch.setenv("STEPKIT_ENV_MODE", "per-step")
    assert Project.load(shared.root).run.environments == "per-step"
    assert StepEnvironments.for_mode(Project.load(shared.root)) is not None
    assert StepEnvironments.for_mode(Project.load(shared.root), "shared") is None


def test_a_bad_mode_is_one_line_with_a_suggestion(write_project: WriteProject) -> None:
    with pytest.raises(EnvModeError) as caught:
        check_env_mode("per_step")
    assert str(caught.value) == (
        "No environment mode 'per_step': use one of shared, per-step. Did you mean 'per-step'?"
    )
    with pytest.raises(EnvModeError):
        RunOptions(env_mode="perstep")
    with pytest.raises(ProjectFileError) as bad:
        project(write_project, 'environments = "perstep"\n')
    assert "stepkit.toml:10: run.environments:" in str(bad.value)
    assert "'shared' or 'per-step'" in str(bad.value)


def test_the_environment_is_part_of_the_cache_key_only_where_a_step_has_one(
    tmp_path: Path,
) -> None:
    script = tmp_path / "step.py"
    script.write_text("def main(a, b, c, d): pass\n")
    common = {
        "files": {"script": script},
        "config": {},
        "environment": {},
        "arguments": {},
        "inputs": {},
    }
    shared = cache_key(**common)  # type: ignore[arg-type]
    assert "python_env" not in shared.parts  # keys made before per-step mode stay valid
    own = cache_key(**common, python_env="abc:111")  # type: ignore[arg-type]
    relocked = cache_key(**common, python_env="abc:222")  # type: ignore[arg-type]
    assert len({shared.digest, own.digest, relocked.digest}) == 3
    assert own.parts["python_env"] == "abc:111"
    assert changed_parts(own.parts, relocked.parts) == ["python_env"]
    assert changed_parts(shared.parts, own.parts) == ["python_env"]


def test_the_child_protocol_runs_a_script_on_an_older_interpreter(tmp_path: Path) -> None:
    """stepkit's modules go as source there: a 3.8 child cannot load 3.11's bytecode."""
    older = require_interpreter((3, 8))
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "step.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\n\n"
        "def main(input_paths, output_paths, environ_vars, job_args):\n"
        "    print(sys.version_info[:2], job_args.flag)\n"
        "    Path(output_paths['out'], 'x').write_text(environ_vars['WHO'])\n"
        "    return 7\n"
    )
    chunks: list[bytes] = []
    from stepkit.child import script_entry

    ran = run_child(
        {
            "kind": "script",
            **script_entry(str(script)),
            "run": True,
            "input_paths": {},
            "output_paths": {"out": str(out)},
            "environ_vars": {"WHO": "older"},
            "job_args": {"flag": "on"},
            "argv": [],
        },
        output=lambda _stream, chunk: chunks.append(chunk),
        timeout=60,
        python=str(older.path),
    )
    assert ran.report is not None, b"".join(chunks).decode()
    assert ran.report["ok"] and ran.report["value"] == "7"
    assert b"".join(chunks).decode().strip() == "(3, 8) on"
    assert (out / "x").read_text() == "older"
    assert sys.version_info[:2] != (3, 8)  # it really was another interpreter


def test_modules_go_compiled_only_to_this_interpreter(tmp_path: Path) -> None:
    """A venv's python links to its base: ours reads our bytecode, another needs source."""
    import os

    from stepkit import processes

    link = tmp_path / "python"
    link.symlink_to(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    assert not processes._foreign(str(link))
    assert not processes._foreign(None)
    older = require_interpreter((3, 8))
    assert processes._foreign(str(older.path))
