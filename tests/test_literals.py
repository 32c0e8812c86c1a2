"""Messages about values that must be literal name the expression in a user's words."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from catalog.synth import Step, write_project

from stepkit.cli.app import main
from stepkit.literals import NotLiteral, describe, literal_eval


def _expr(source: str) -> ast.expr:
    statement = ast.parse(source).body[0]
    assert isinstance(statement, ast.Expr)
    return statement.value


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("os.path.join(BASE, 'x')", "a call to os.path.join(...)"),
        ("BASE", "the name BASE"),
        ("os.sep", "os.sep"),
        ("f'{BASE}/data'", "an f-string (f'{BASE}/data')"),
        ("BASE + '/data'", "an arithmetic expression (BASE + '/data')"),
        ("ENV['X']", "an item of ENV (ENV['X'])"),
        ("[x for x in y]", "a comprehension ([x for x in y])"),
        ("a if b else c", "a conditional expression (a if b else c)"),
        ("{**OTHER}", "a dict that unpacks another ({**OTHER})"),
    ],
)
def test_expressions_are_described_in_user_words(source: str, words: str) -> None:
    assert describe(_expr(source)) == words


def test_a_long_expression_is_shortened() -> None:
    described = describe(_expr("BASE + " + " + ".join(f"PART_{i}" for i in range(20))))
    assert described.startswith("an arithmetic expression (BASE + PART_0 + PART_1")
    assert described.endswith("…)") and len(described) < 70


def test_literal_eval_names_the_innermost_part_that_is_not_literal() -> None:
    assert literal_eval(_expr("{'a': [1, -2.5, (True, None)]}")) == {"a": [1, -2.5, (True, None)]}
    value = _expr("{\n    'a': 'x',\n    'b': [1, make()],\n}")
    with pytest.raises(NotLiteral) as info:
        literal_eval(value)
    assert str(info.value) == "a call to make(...)"
    assert info.value.line == 3
    assert info.value.reason(value) == (
        "holds a call to make(...), not a literal value: write the value itself"
    )


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("make()", "is a call to make(...), not a literal value: write the value itself"),
        ("BASE", "refers to the name BASE, not a literal value: write the value itself"),
        ("cfg.BASE", "refers to cfg.BASE, not a literal value: write the value itself"),
    ],
)
def test_the_reason_says_what_the_whole_value_is(source: str, reason: str) -> None:
    value = _expr(source)
    with pytest.raises(NotLiteral) as info:
        literal_eval(value)
    assert info.value.reason(value) == reason


def test_catalog_check_says_what_a_computed_contract_value_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "project", {"shared": [Step("Loader")]})
    contract = root / "steps" / "contracts" / "loader_contract.py"
    text = contract.read_text()
    text = text.replace(
        'expected_input_paths={"data": "/opt/ml/processing/input/data"}',
        'expected_input_paths=os.path.join(BASE, "input")',
    ).replace('required_env_vars=["LABEL_FIELD"]', "required_env_vars=ENV_VARS")
    text = text.replace('"0.7"}', 'f"{RATIO}"}')
    contract.write_text(text)
    with pytest.raises(SystemExit) as done:
        main(["-p", str(root), "catalog", "check"])
    assert done.value.code == 1
    out = capsys.readouterr().out
    assert (
        "contract LOADER_CONTRACT: expected_input_paths is a call to os.path.join(...), "
        "not a literal value: write the value itself"
    ) in out
    assert (
        "contract LOADER_CONTRACT: required_env_vars refers to the name ENV_VARS, "
        "not a literal value: write the value itself"
    ) in out
    assert (
        "contract LOADER_CONTRACT: optional_env_vars holds an f-string (f'{RATIO}'), "
        "not a literal value: write the value itself"
    ) in out
    assert "(Call)" not in out and "(Name)" not in out and "(JoinedStr)" not in out


def test_a_registry_value_made_by_code_is_named_in_user_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    (root / "steps").mkdir(parents=True)
    (root / "stepkit.toml").write_text(
        '[project]\nname = "p"\n\n[[workspaces]]\nid = "shared"\npath = "steps"\n'
        'registry = "steps/step_names.py"\n'
    )
    (root / "steps" / "step_names.py").write_text(
        'STEP_NAMES = {\n    "A": {\n        "config_class": CONFIGS["A"],\n    },\n}\n'
    )
    with pytest.raises(SystemExit) as done:
        main(["-p", str(root), "registry", "check"])
    assert done.value.code == 1
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert (
        "step_names.py:3: STEP_NAMES['A'] holds an item of CONFIGS (CONFIGS['A']), "
        "not a literal value: write the value itself"
    ) in err
    assert "ast." not in err and "object at" not in err
