from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stepkit.errors import ProjectFileError, ProjectNotFoundError, UnknownWorkspaceError
from stepkit.project import Project
from stepkit.walk import scan_project

WriteProject = Callable[..., Path]

TOML = """
[project]
name = "retail"

[[workspaces]]
id = "alice"
path = "dev/alice/steps"

[[workspaces]]
id = "shared"
path = "steps"
"""


def _dirs(root: Path) -> None:
    (root / "dev/alice/steps").mkdir(parents=True, exist_ok=True)
    (root / "steps").mkdir(parents=True, exist_ok=True)


def test_loads_workspaces_in_precedence_order(write_project: WriteProject) -> None:
    root = write_project({"stepkit.toml": TOML})
    _dirs(root)
    project = Project.load(root)
    assert project.name == "retail"
    assert project.workspace_ids == ("alice", "shared")
    assert project.core.id == "shared" and project.core.is_core
    assert project.state_dir == (root / ".stepkit").resolve()
    assert project.artifacts_root == project.state_dir / "artifacts"
    assert project.workspace("alice").steps_dir == (root / "dev/alice/steps").resolve()
    with pytest.raises(UnknownWorkspaceError, match="Did you mean 'alice'"):
        project.workspace("alicia")


def test_found_by_walking_up_and_from_the_environment(
    write_project: WriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project({"stepkit.toml": TOML})
    _dirs(root)
    deep = root / "dev/alice/steps"
    assert Project.load(cwd=deep).file == root / "stepkit.toml"
    monkeypatch.setenv("STEPKIT_PROJECT", str(root / "stepkit.toml"))
    assert Project.load().root == root


def test_missing_project_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match=str(tmp_path)):
        Project.load(cwd=tmp_path)


def test_unknown_key_is_an_error_with_line_and_suggestion(write_project: WriteProject) -> None:
    root = write_project({"stepkit.toml": TOML.replace('path = "steps"', 'pth = "steps"')})
    _dirs(root)
    with pytest.raises(ProjectFileError) as info:
        Project.load(root)
    message = str(info.value)
    assert "stepkit.toml:10: workspaces.1.pth: unknown key." in message
    assert "Did you mean 'path'?" in message


def test_unknown_section_suggests_the_right_one(write_project: WriteProject) -> None:
    root = write_project({"stepkit.toml": TOML + '\n[artifact]\nroot = "x"\n'})
    _dirs(root)
    with pytest.raises(ProjectFileError, match="Did you mean 'artifacts'"):
        Project.load(root)


def test_missing_workspace_folder_is_named(write_project: WriteProject) -> None:
    root = write_project({"stepkit.toml": TOML})
    (root / "steps").mkdir()
    with pytest.raises(ProjectFileError, match="workspace 'alice': steps folder 'dev/alice/steps'"):
        Project.load(root)


def test_bad_toml_and_bad_values(write_project: WriteProject) -> None:
    root = write_project({"stepkit.toml": "[project\nname = 1"})
    with pytest.raises(ProjectFileError, match="is not valid TOML"):
        Project.load(root)
    root = write_project({"stepkit.toml": TOML + "\n[run]\nmax_workers = 0\n"})
    _dirs(root)
    with pytest.raises(ProjectFileError, match=r"run.max_workers: .*greater than or equal to 1"):
        Project.load(root)
    root = write_project({"stepkit.toml": TOML.replace('id = "alice"', 'id = "shared"')})
    with pytest.raises(ProjectFileError, match="listed twice"):
        Project.load(root)


def test_environment_overrides_settings(
    write_project: WriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project({"stepkit.toml": TOML})
    _dirs(root)
    monkeypatch.setenv("STEPKIT_STATE_DIR", "var/state")
    monkeypatch.setenv("STEPKIT_MAX_WORKERS", "3")
    project = Project.load(root)
    assert project.state_dir == (root / "var/state").resolve()
    assert project.run.max_workers == 3


def test_registry_file_defaults_and_explicit(write_project: WriteProject) -> None:
    root = write_project(
        {
            "stepkit.toml": TOML,
            "steps/registry/step_names.py": "STEP_NAMES = {}\n",
            "dev/alice/steps/registry.toml": "",
        }
    )
    project = Project.load(root)
    assert (
        project.workspace("shared").registry_file == root.resolve() / "steps/registry/step_names.py"
    )
    assert (
        project.workspace("alice").registry_file == root.resolve() / "dev/alice/steps/registry.toml"
    )
    bad = TOML.replace('path = "steps"', 'path = "steps"\nregistry = "nope.py"')
    root = write_project({"stepkit.toml": bad})
    with pytest.raises(ProjectFileError, match=r"registry file 'nope\.py' does not exist"):
        Project.load(root)


def test_walker_reports_problems_and_keeps_going(write_project: WriteProject) -> None:
    root = write_project(
        {
            "stepkit.toml": TOML,
            "steps/scripts/a.py": "",
            "steps/scripts/nested/b.py": "",
            "steps/contracts/a_contract.py": "",
            "steps/scripts/__init__.py": "",
            "steps/scripts/notes.txt": "",
            "dev/alice/steps/specs/a_spec.py": "",
        }
    )
    (root / "steps/scripts/loop").symlink_to(root / "steps/scripts")
    (root / "steps/scripts/dangling.py").symlink_to(root / "nowhere.py")
    result = scan_project(Project.load(root))
    found = {(scan.workspace_id, scan.component, f.name) for _, scan, f in result.paths()}
    assert found == {
        ("shared", "script", "a.py"),
        ("shared", "script", "b.py"),
        ("shared", "contract", "a_contract.py"),
        ("alice", "spec", "a_spec.py"),
    }
    messages = sorted(p.message.split(":")[0] for p in result.problems)
    assert messages == ["cannot be read", "symlink loop"]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ('\n[run]\nmax_workers = "four"\n', "run.max_workers: must be an integer, not text"),
        ("\n[run]\nsandbox = 'maybe'\n", "run.sandbox: must be true or false, not text"),
        ("\n[test]\ntimeout = -1\n", "test.timeout: must be a number greater than 0"),
        ("\n[test]\nenv = { A = 1 }\n", "test.env: each value must be text, not an integer"),
        ("\n[run]\nenvironments = 'perstep'\n", "'shared' or 'per-step' (got 'perstep')."),
    ],
)
def test_a_value_that_does_not_fit_is_said_in_words_with_its_key(
    write_project: WriteProject, extra: str, said: str
) -> None:
    root = write_project({"stepkit.toml": TOML + extra})
    _dirs(root)
    with pytest.raises(ProjectFileError) as caught:
        Project.load(root)
    assert said in str(caught.value)
    assert "`" not in str(caught.value)  # no library's own notation
