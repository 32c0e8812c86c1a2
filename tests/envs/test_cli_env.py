"""``stepkit env build | list | prune`` on a project whose steps declare requirements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import WriteProject

from stepkit.cli import main

PROJECT = {
    "stepkit.toml": """
        [project]
        name = "envs"

        [[workspaces]]
        id = "core"
        path = "steps"

        [run]
        environments_dir = "envs"
    """,
    "steps/contracts/old_six_contract.py": """
        from stepkit.components import ScriptContract

        OLD_SIX_CONTRACT = ScriptContract(
            entry_point="old_six.py", framework_requirements={"six": "==1.10.0"}
        )
    """,
    "steps/contracts/also_six_contract.py": """
        from stepkit.components import ScriptContract

        ALSO_SIX_CONTRACT = ScriptContract(
            entry_point="also_six.py", framework_requirements={"Six": "1.10.0"}
        )
    """,
    "steps/contracts/plain_contract.py": """
        from stepkit.components import ScriptContract

        PLAIN_CONTRACT = ScriptContract(entry_point="plain.py")
    """,
    "steps/scripts/old_six.py": "import six\n",
    "steps/scripts/also_six.py": "import six\n",
    "steps/scripts/plain.py": "print('plain')\n",
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_build_list_and_prune(
    capsys: pytest.CaptureFixture[str], write_project: WriteProject
) -> None:
    root = write_project(PROJECT)
    p = ["-p", str(root)]

    code, out, err = run(capsys, *p, "env", "build")
    assert code == 0, err
    [line] = out.splitlines()
    assert line.startswith("built ") and "AlsoSix, OldSix" in line

    code, out, _ = run(capsys, *p, "env", "build", "OldSix", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row["status"] == "reused" and row["steps"] == ["OldSix"]

    code, out, err = run(capsys, *p, "env", "build", "Plain")
    assert code == 0
    assert "Plain: declares no framework_requirements (nor another python)" in err

    code, out, _ = run(capsys, *p, "env", "list", "--json")
    data = json.loads(out)
    assert data["root"] == str(root / "envs")
    [environment] = data["environments"]
    assert environment["steps"] == ["AlsoSix", "OldSix"]
    assert environment["requirements"] == ["six==1.10.0"]
    assert environment["size"] > 0
    key = environment["key"]

    code, out, _ = run(capsys, *p, "env", "prune")
    assert out.strip() == "Would prune 0 environment(s), 0 B; run with --apply to delete."

    # No step asks for six any more: prune shows it, and deletes it only with --apply.
    (root / "steps/contracts/old_six_contract.py").unlink()
    (root / "steps/contracts/also_six_contract.py").unlink()
    code, out, _ = run(capsys, *p, "env", "prune")
    assert code == 0
    assert out.splitlines()[0].startswith(f"would remove {key}  Python ")
    assert (root / "envs" / key / "bin" / "python").exists()
    code, out, _ = run(capsys, *p, "env", "prune", "--apply")
    assert code == 0 and f"removed {key}" in out
    assert not (root / "envs" / key).exists()
    assert list((root / "envs" / "specs").iterdir()) == []


def test_an_unknown_step_is_one_line(
    capsys: pytest.CaptureFixture[str], write_project: WriteProject
) -> None:
    root = write_project(PROJECT)
    code, _, err = run(capsys, "-p", str(root), "env", "build", "OldSx")
    assert code == 1
    assert err.strip() == "error: No step named 'OldSx'. Did you mean 'OldSix'?"


def test_the_environments_folder_defaults_to_the_user_cache(
    write_project: WriteProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.envs import default_root
    from stepkit.project import Project

    files = dict(PROJECT)
    files["stepkit.toml"] = files["stepkit.toml"].replace('environments_dir = "envs"', "")
    root = write_project(files)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_root(Project.load(root)) == tmp_path / "cache" / "stepkit" / "envs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_root(None) == Path.home() / ".cache" / "stepkit" / "envs"
    monkeypatch.setenv("STEPKIT_ENVIRONMENTS_DIR", str(tmp_path / "elsewhere"))
    assert default_root(Project.load(root)) == tmp_path / "elsewhere"


def test_prune_removes_pointers_to_environments_that_are_gone(
    capsys: pytest.CaptureFixture[str], write_project: WriteProject
) -> None:
    root = write_project(PROJECT)
    pointer = root / "envs" / "specs" / f"{'ab' * 32}.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(json.dumps({"key": "0123456789abcdef01234567"}))
    code, out, _ = run(capsys, "-p", str(root), "env", "prune")
    assert code == 0
    assert (
        out.splitlines()[0]
        == f"would remove specs/{'ab' * 8}…  (points to an environment that is gone)"
    )
    assert pointer.exists()
    run(capsys, "-p", str(root), "env", "prune", "--apply")
    assert not pointer.exists()


@pytest.mark.slow
def test_catalog_show_names_the_environment_and_its_resolved_versions(
    capsys: pytest.CaptureFixture[str], write_project: WriteProject
) -> None:
    root = write_project(PROJECT)
    p = ["-p", str(root)]
    code, out, _ = run(capsys, *p, "catalog", "show", "OldSix")
    assert code == 0
    assert "  environment: six==1.10.0\n    not built yet (stepkit env build OldSix)\n" in out
    code, out, _ = run(capsys, *p, "catalog", "show", "Plain", "--json")
    assert json.loads(out)["environment"] is None

    run(capsys, *p, "env", "build", "OldSix")
    code, out, _ = run(capsys, *p, "catalog", "show", "OldSix", "--json")
    shown = json.loads(out)["environment"]
    assert shown["built"] is True and shown["versions"] == {"six": "1.10.0"}
    code, out, _ = run(capsys, *p, "catalog", "show", "OldSix")
    assert f"    built {shown['key']}: Python {shown['python_version']}; six 1.10.0\n" in out
