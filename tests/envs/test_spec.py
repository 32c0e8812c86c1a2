"""The normal form of a step's requirements: equal asks give one spec, one digest."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from stepkit.components import ScriptContract
from stepkit.envs import EnvSpec, env_key
from stepkit.envs.interpreters import Interpreter
from stepkit.envs.spec import normalize_name, requirement_line


def test_spellings_of_the_same_requirements_are_one_spec() -> None:
    a = EnvSpec.from_requirements({"Scikit_Learn": ">=0.23.2, <1.0.0", "pandas": "==1.2.4"})
    b = EnvSpec.from_requirements({"pandas": "1.2.4", "scikit-learn": ">=0.23.2,<1.0.0"})
    assert a == b
    assert a.digest == b.digest
    assert a.requirements == ("pandas==1.2.4", "scikit-learn>=0.23.2,<1.0.0")


def test_a_python_request_is_part_of_the_spec() -> None:
    plain = EnvSpec.from_requirements({"six": "==1.10.0"})
    on_39 = EnvSpec.from_requirements({"six": "==1.10.0"}, python="3.9")
    assert plain.digest != on_39.digest
    assert on_39.describe() == "six==1.10.0 on Python 3.9"


def test_pip_is_always_installed_beside_the_requirements() -> None:
    assert EnvSpec.from_requirements({"six": "==1.10.0"}).install_lines == ("six==1.10.0", "pip")
    pinned = EnvSpec.from_requirements({"pip": "==24.0"})
    assert pinned.install_lines == ("pip==24.0",)


def test_any_version_and_bare_versions() -> None:
    assert requirement_line("six", "") == "six"
    assert requirement_line("six", "*") == "six"
    assert requirement_line("xgboost", "1.7.6") == "xgboost==1.7.6"
    assert requirement_line("psycopg", "[binary]>=3.1") == "psycopg[binary]>=3.1"


def test_from_contract_reads_framework_requirements() -> None:
    contract = ScriptContract(entry_point="x.py", framework_requirements={"xgboost": "==1.7.6"})
    spec = EnvSpec.from_contract(contract)
    assert spec.requirements == ("xgboost==1.7.6",)
    assert spec.names == ("xgboost",)


def test_the_key_depends_on_the_interpreter() -> None:
    spec = EnvSpec.from_requirements({"six": "==1.10.0"})
    on_311 = Interpreter(path=Path("/usr/bin/python3.11"), version=(3, 11, 7))
    on_39 = Interpreter(path=Path("/usr/bin/python3.9"), version=(3, 9, 18))
    assert env_key(spec, on_311) != env_key(spec, on_39)
    assert env_key(spec, on_311) == env_key(EnvSpec.from_requirements({"SIX": "1.10.0"}), on_311)


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,20}", fullmatch=True))
def test_normalized_names_are_stable(name: str) -> None:
    once = normalize_name(name)
    assert normalize_name(once) == once
    assert once == once.lower()
    assert "_" not in once and "." not in once
