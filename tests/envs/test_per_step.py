"""Per-step environments wired in: ``test script|all|pipeline`` and ``run`` with
``--env-mode per-step`` (or ``[run] environments``) run a step's script on its own
environment's interpreter, in the sandbox, and the run's cache key records it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import write_tiny_project

from envs.conftest import require_interpreter, require_sandbox
from stepkit.cli import main
from stepkit.envs import EnvSpec, EnvStore
from stepkit.envs.interpreters import own_interpreter

pytestmark = pytest.mark.slow

#: A real script's habit: pip install its pins at import, unconditionally.
OLD_SIX_SCRIPT = """
    import subprocess, sys
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "six==1.10.0"])
    import six
    from pathlib import Path

    def main(input_paths, output_paths, environ_vars, job_args):
        print("six", six.__version__, "on", sys.version_info[:2])
        Path(output_paths["out"], "six.txt").write_text(six.__version__)
    """

ZONEINFO_SCRIPT = """
    import sys
    from backports import zoneinfo
    from pathlib import Path

    def main(input_paths, output_paths, environ_vars, job_args):
        Path(output_paths["out"], "python.txt").write_text("%d.%d" % sys.version_info[:2])
    """


def contract(name: str, requirements: dict[str, str]) -> str:
    return f"""
        from stepkit.components import ScriptContract

        {name.upper()}_CONTRACT = ScriptContract(
            entry_point="{name}.py",
            expected_output_paths={{"out": "/opt/ml/processing/output/out"}},
            framework_requirements={requirements!r},
        )
    """


@pytest.fixture(scope="module")
def envs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environments folder for the module: each environment is built once."""
    return tmp_path_factory.mktemp("envs")


@pytest.fixture
def project(tmp_path: Path, envs_dir: Path) -> Path:
    root = tmp_path / "project"
    files = {
        "stepkit.toml": f"""
            [project]
            name = "per-step"

            [[workspaces]]
            id = "core"
            path = "steps"

            [run]
            environments_dir = "{envs_dir}"
        """,
        "steps/contracts/old_six_contract.py": contract("old_six", {"six": "==1.10.0"}),
        "steps/scripts/old_six.py": OLD_SIX_SCRIPT,
        "steps/contracts/no_such_contract.py": contract("no_such", {"six": "==999.0"}),
        "steps/scripts/no_such.py": "def main(a, b, c, d):\n    pass\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bwrap() -> None:
    require_sandbox()


def test_an_old_pin_installed_at_import_runs_in_the_sandbox_on_its_environment(
    bwrap: None, capsys: pytest.CaptureFixture[str], project: Path, envs_dir: Path
) -> None:
    p = ["-p", str(project)]
    spec = EnvSpec.from_requirements({"six": "==1.10.0"})
    built_before = EnvStore(envs_dir).lookup(spec, touch=False) is not None
    code, out, err = run_cli(
        capsys, *p, "test", "script", "OldSix", "--env-mode", "per-step", "--json"
    )
    assert code == 0, out + err
    result = json.loads(out)
    assert result["status"] == "PASS"
    checks = {c["name"]: c["reason"] for c in result["checks"]}
    assert checks["environment"].startswith(
        f"Python {own_interpreter().version_text}, environment "
    )
    assert "Requirement already satisfied" not in result["stderr"]["text"]  # --quiet
    own = own_interpreter()
    assert result["stdout"]["text"].strip() == f"six 1.10.0 on ({own.version[0]}, {own.version[1]})"
    environment = EnvStore(envs_dir).lookup(spec)
    assert environment is not None and environment.requirements == ("six==1.10.0",)
    if not built_before:  # told once, when it is built
        assert "building an environment for six==1.10.0 (reused once built)" in err
        assert f"environment {environment.key} ready: Python {own.version_text}" in err
    code, out, err = run_cli(capsys, *p, "test", "script", "OldSix", "--env-mode", "per-step")
    assert code == 0 and "building" not in err

    # The default mode is shared: the same script, in stepkit's own environment under the
    # sandbox, cannot install its pin (no network, pip off) and fails at import.
    code, out, _ = run_cli(capsys, *p, "test", "script", "OldSix", "--json")
    assert code == 1
    assert json.loads(out)["checks"][0]["name"] == "import"


def test_the_project_setting_turns_per_step_on_for_test_all(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    toml = project / "stepkit.toml"
    toml.write_text(toml.read_text() + 'environments = "per-step"\n')
    code, out, _ = run_cli(capsys, "-p", str(project), "test", "all", "--json")
    assert code == 1  # NoSuch cannot be built
    results = {r["name"]: r for r in json.loads(out)}
    assert results["OldSix"]["status"] == "PASS"
    no_such = results["NoSuch"]
    assert no_such["status"] == "ERROR"
    [check] = no_such["checks"]
    assert check["name"] == "environment"
    assert check["reason"].startswith("Cannot build an environment for six==999.0: ")
    assert "\n" not in check["reason"]


def test_a_step_that_only_resolves_on_an_older_python_runs_on_it(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """backports.zoneinfo 0.2.1 has wheels up to CPython 3.8: the child protocol runs there."""
    require_interpreter((3, 8))
    steps = project / "steps"
    (steps / "contracts/zone_contract.py").write_text(
        textwrap.dedent(contract("zone", {"backports.zoneinfo": "==0.2.1"})).lstrip()
    )
    (steps / "scripts/zone.py").write_text(textwrap.dedent(ZONEINFO_SCRIPT).lstrip())
    code, out, err = run_cli(
        capsys,
        "-p",
        str(project),
        "test",
        "script",
        "Zone",
        "--env-mode",
        "per-step",
        "--keep",
        "--json",
    )
    assert code == 0, out + err
    result = json.loads(out)
    assert Path(result["outputs"]["out"], "python.txt").read_text() == "3.8"


def test_an_unknown_mode_is_one_line(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    code, _, err = run_cli(
        capsys, "-p", str(project), "test", "script", "OldSix", "--env-mode", "per_step"
    )
    assert code == 1
    assert err.strip() == (
        "error: No environment mode 'per_step': use one of shared, per-step. "
        "Did you mean 'per-step'?"
    )


# -- stepkit run -------------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path: Path, envs_dir: Path) -> Path:
    """The e2e tiny project (Make → Double → Report) whose Double pins six and says which."""
    root = write_tiny_project(tmp_path / "tiny")
    toml = root / "stepkit.toml"
    toml.write_text(toml.read_text() + f'\n[run]\nenvironments_dir = "{envs_dir}"\n')
    contract_file = root / "steps/contracts/double_contract.py"
    contract_file.write_text(
        contract_file.read_text().replace(
            "optional_env_vars=",
            "framework_requirements={'six': '==1.10.0'},\n    optional_env_vars=",
        )
    )
    script = root / "steps/scripts/double.py"
    script.write_text(
        "import sys\nimport six\n"
        + script.read_text()
        + "    print('double ran on six', six.__version__, 'in', sys.prefix)\n"
        + "    return {'six': six.__version__}\n"
    )
    return root


def run_json(
    capsys: pytest.CaptureFixture[str], root: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(
        capsys, "-p", str(root), "run", str(root / "dag.yaml"), "--json", *args
    )
    assert out, err
    return code, json.loads(out)


def node_info(
    capsys: pytest.CaptureFixture[str], root: Path, run_id: str
) -> dict[str, dict[str, Any]]:
    """Each stage's ``_node`` record (what ``runs show --json`` holds), by stage."""
    code, out, err = run_cli(capsys, "-p", str(root), "runs", "show", run_id, "--json")
    assert code == 0, err
    return {a["stage"]: a["outputs"]["_node"] for a in json.loads(out)["attempts"]}


def test_run_per_step_runs_the_script_on_its_environment_and_keys_the_cache_on_it(
    capsys: pytest.CaptureFixture[str], tiny: Path, envs_dir: Path
) -> None:
    code, first = run_json(capsys, tiny, "--env-mode", "per-step")
    assert code == 0, first
    stages = first["stages"]
    assert isinstance(stages, dict)
    assert {n: s["status"] for n, s in stages.items()} == {
        "Make": "completed",
        "Double": "completed",
        "Report": "completed",
    }
    environment = EnvStore(envs_dir).lookup(EnvSpec.from_requirements({"six": "==1.10.0"}))
    assert environment is not None
    info = node_info(capsys, tiny, str(first["run_id"]))
    assert info["Double"]["returned"] == repr({"six": "1.10.0"})
    assert info["Double"]["python_env"] == {
        "key": environment.key,
        "python": environment.python_version,
        "lock_digest": environment.lock_digest,
    }
    assert "python_env" not in info["Make"]

    # the same mode again: all cached; the shared mode is another key for Double only
    _, again = run_json(capsys, tiny, "--env-mode", "per-step")
    assert {s["status"] for s in again["stages"].values()} == {"cached"}
    code, shared = run_json(capsys, tiny)
    stages = shared["stages"]
    assert isinstance(stages, dict)
    assert stages["Make"]["status"] == "cached"
    assert stages["Double"]["status"] != "cached"

    # runs show names the environment each stage ran in
    code, out, _ = run_cli(capsys, "-p", str(tiny), "runs", "show", str(first["run_id"]))
    assert code == 0
    assert f"Double: environment {environment.key} (Python {environment.python_version}, " in out


def test_a_node_whose_environment_cannot_be_built_fails_and_the_rest_runs(
    capsys: pytest.CaptureFixture[str], tiny: Path
) -> None:
    contract_file = tiny / "steps/contracts/double_contract.py"
    contract_file.write_text(contract_file.read_text().replace("==1.10.0", "==999.0"))
    code, result = run_json(capsys, tiny, "--env-mode", "per-step")
    assert code == 1
    stages = result["stages"]
    assert isinstance(stages, dict)
    assert stages["Make"]["status"] in ("completed", "cached")
    assert stages["Double"]["status"] == "failed"
    assert stages["Double"]["error"].startswith(
        "EnvironmentBuildError: Cannot build an environment for six==999.0: "
    )
    assert stages["Report"]["status"] == "skipped"


def test_test_pipeline_runs_each_step_in_its_own_environment(
    capsys: pytest.CaptureFixture[str], tiny: Path
) -> None:
    code, out, err = run_cli(
        capsys, "-p", str(tiny), "test", "pipeline", str(tiny / "dag.yaml"),
        "--env-mode", "per-step", "--json",
    )  # fmt: skip
    assert code == 0, out + err
    steps = {s["name"]: s for s in json.loads(out)["steps"]}
    assert "double ran on six 1.10.0 in " in steps["Double"]["stdout"]["text"]
    assert [c["name"] for c in steps["Make"]["checks"]].count("environment") == 0
    checks = {c["name"]: c["reason"] for c in steps["Double"]["checks"]}
    assert checks["environment"].startswith("Python ")
