"""A contract's ``python``: the interpreter version a step wants, read from either layout
and honoured by its environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from envs.conftest import require_interpreter, run_in
from stepkit.components import ScriptContract
from stepkit.envs import EnvStore, step_environment
from stepkit.envs.interpreters import own_interpreter
from stepkit.envs.spec import wanted_spec
from stepkit.errors import EnvironmentBuildError, InterfaceFileError
from stepkit.interface import interface_document, parse_interface, render_interface

INTERFACE = """\
step_type: OldPython
node_type: source
registry:
  sagemaker_step_type: Processing
contract:
  entry_point: old_python.py
  outputs:
    out:
      path: /opt/ml/processing/output
  framework_requirements:
    six: ==1.10.0
  python: {python}
spec:
  outputs:
    out:
      type: processing_output
"""


def parse(python: str) -> object:
    return parse_interface(
        INTERFACE.format(python=python),
        path=Path("steps/interfaces/old_python.step.yaml"),
        workspace_id="core",
    )


def test_the_interface_file_carries_python_and_writes_it_back() -> None:
    step = parse('"3.10"')
    contract = step.contract  # type: ignore[attr-defined]
    assert contract.python == "3.10"
    document = interface_document(
        registry=step.registry.fields,  # type: ignore[attr-defined]
        contract=contract,
        spec=step.spec,  # type: ignore[attr-defined]
        variants=step.variants,  # type: ignore[attr-defined]
    )
    assert document["contract"]["python"] == "3.10"
    assert (
        parse_interface(
            render_interface(document), path=Path("x.step.yaml"), workspace_id="core"
        ).contract
        == contract
    )


def test_a_python_written_as_a_number_is_refused_with_the_reason() -> None:
    with pytest.raises(InterfaceFileError) as caught:
        parse("3.10")  # YAML reads this as the number 3.1
    message = str(caught.value)
    assert message.startswith("steps/interfaces/old_python.step.yaml:")
    assert "python must be text such as '3.10', not the number 3.1" in message
    with pytest.raises(ValidationError, match=r"must be a version such as '3\.9'"):
        ScriptContract(entry_point="a.py", python=">=3.9")


def test_a_python_stepkits_own_fits_needs_no_environment() -> None:
    own = own_interpreter()
    plain = ScriptContract(entry_point="a.py", python=f"{own.version[0]}.{own.version[1]}")
    assert wanted_spec(plain) is None
    other = ScriptContract(entry_point="a.py", python="3.8")
    spec = wanted_spec(other)
    assert spec is not None and spec.python == "3.8" and spec.requirements == ()


@pytest.mark.slow
def test_the_python_asked_for_is_the_one_built_on(tmp_path: Path) -> None:
    older = require_interpreter((3, 9))
    store = EnvStore(tmp_path / "envs")
    contract = ScriptContract(
        entry_point="a.py", framework_requirements={"six": "==1.10.0"}, python="3.9"
    )
    environment = step_environment(contract, store=store)
    assert environment is not None
    assert environment.python_version == older.version_text
    assert (
        run_in(environment.python, "import six, sys; print(six.__version__, sys.version_info[:2])")
        == "1.10.0 (3, 9)"
    )
    # only a python: an environment with pip alone, on that version
    bare = step_environment(ScriptContract(entry_point="b.py", python="3.9"), store=store)
    assert bare is not None and bare.key != environment.key
    assert run_in(bare.python, "import sys; print(sys.version_info[:2])") == "(3, 9)"


def test_a_python_no_local_interpreter_has_is_one_line(tmp_path: Path) -> None:
    contract = ScriptContract(entry_point="a.py", framework_requirements={"six": ""}, python="3.99")
    with pytest.raises(EnvironmentBuildError) as caught:
        step_environment(contract, store=EnvStore(tmp_path / "envs"))
    assert str(caught.value) == (
        "Cannot build an environment for Python 3.99: no local interpreter of that version "
        "(Python 3.8 or later, on PATH, in pyenv's versions or uv-managed; stepkit never "
        "downloads one) (interpreters tried: none found)."
    )
