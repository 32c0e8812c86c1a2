"""``registry export -f python``: a module a person would have written, that reads back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from stepkit.cli import main
from stepkit.project import Project
from stepkit.registry import Registry
from stepkit.registry.export import python_literal, render_python
from stepkit.registry.sources import read_registry

TRICKY = r"""
STEP_NAMES = {
    "Quoted": {
        "config_class": "QuotedConfig",
        "builder_step_name": "QuotedStepBuilder",
        "spec_type": "Quoted",
        "sagemaker_step_type": "Processing",
        "description": "Says \"hi\" with a back\\slash, a tab\t and naïve — unicode",
    },
}
"""


def _export(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> str:
    try:
        main(["-p", str(root), "registry", "export", "--format", "python", *args])
    except SystemExit as exc:
        assert not exc.code
    return capsys.readouterr().out


def _literal(text: str) -> object:
    (assign,) = [n for n in ast.parse(text).body if isinstance(n, ast.Assign)]
    return ast.literal_eval(assign.value)


def test_the_exported_module_is_formatted_compiles_and_round_trips(
    capsys: pytest.CaptureFixture[str], example_project: Path, tmp_path: Path
) -> None:
    text = _export(capsys, example_project, "-w", "alice")
    compile(text, "step_names.py", "exec")
    original = Registry.load(Project.load(example_project))
    assert _literal(text) == {k: dict(v) for k, v in original.classic("alice").items()}
    lines = text.splitlines()
    assert lines[2] == "STEP_NAMES = {"
    assert lines[3].startswith('    "') and lines[3].endswith('": {')
    assert lines[4].startswith('        "builder_step_name": "') and lines[4].endswith('",')
    assert lines[-1] == "}"
    target = tmp_path / "step_names.py"
    target.write_text(text, encoding="utf-8")
    # What a formatter would write: ruff leaves it exactly as it is.
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--isolated",
            "--line-length",
            "100",
            "--diff",
            str(target),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    exported = Registry({"core": read_registry(target, "core")}, ["core"])
    assert dict(exported.classic()) == dict(original.classic("alice"))


def test_quotes_backslashes_and_unicode_survive_the_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "stepkit.toml").write_text(
        '[project]\nname="x"\n[[workspaces]]\nid="core"\npath="steps"\n'
    )
    (tmp_path / "steps/step_names.py").write_text(TRICKY, encoding="utf-8")
    text = _export(capsys, tmp_path)
    data = _literal(text)
    assert isinstance(data, dict)
    assert (
        data["Quoted"]["description"] == 'Says "hi" with a back\\slash, a tab\t and naïve — unicode'
    )
    assert (
        '"description": "Says \\"hi\\" with a back\\\\slash, a tab\\t and naïve — unicode",' in text
    )
    registry = Registry.load(Project.load(tmp_path))
    assert _literal(render_python(registry)) == {k: dict(v) for k, v in registry.classic().items()}


def test_short_values_stay_on_one_line_and_long_ones_split() -> None:
    assert python_literal({"b": [1, 2], "a": None}, level=0, column=0) == '{"a": None, "b": [1, 2]}'
    long = {"k": [f"item-{i:03d}" for i in range(12)]}
    assert python_literal(long, level=0, column=0) == (
        '{\n    "k": [\n' + "".join(f'        "item-{i:03d}",\n' for i in range(12)) + "    ],\n}"
    )
    with pytest.raises(TypeError, match="cannot write set"):
        python_literal({"k": {1}}, level=0, column=0)
