"""Building environments for real with uv against this machine's package index."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from envs.conftest import require_interpreter, run_in
from stepkit.components import ScriptContract
from stepkit.envs import (
    EnvSpec,
    EnvStore,
    ensure_environment,
    read_lock,
    rebuild_from_lock,
    step_environment,
)
from stepkit.envs import build as build_module
from stepkit.envs.interpreters import own_interpreter
from stepkit.errors import EnvironmentBuildError

pytestmark = pytest.mark.slow

OLD_SIX = EnvSpec.from_requirements({"six": "==1.10.0"})


def test_an_old_pinned_package_gets_an_environment_of_its_own(shared_store: EnvStore) -> None:
    environment = ensure_environment(OLD_SIX, store=shared_store)
    assert run_in(environment.python, "import six; print(six.__version__)") == "1.10.0"
    # scripts run `python -m pip install` of their pins: pip is there, and finds it satisfied
    assert run_in(environment.python, "import sys; print(sys.prefix)") == str(environment.path)
    pip = run_in(
        environment.python,
        "import subprocess, sys; print(subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', 'six==1.10.0'], capture_output=True, text=True).stdout)",
    )
    assert "Requirement already satisfied: six==1.10.0" in pip
    assert environment.python_version == own_interpreter().version_text
    lock = read_lock(environment.lock_path)
    assert lock.version_of("six") == "1.10.0"
    assert lock.version_of("pip") is not None
    assert environment.identity == f"{environment.key}:{lock.digest}"


def test_steps_with_equal_requirements_share_one_environment(
    shared_store: EnvStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = ScriptContract(entry_point="a.py", framework_requirements={"six": "==1.10.0"})
    first = step_environment(contract, store=shared_store)
    assert first is not None

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a built environment was built again")

    monkeypatch.setattr(build_module, "build_environment", no_build)
    contract = ScriptContract(entry_point="b.py", framework_requirements={"Six": " 1.10.0 "})
    second = ensure_environment(EnvSpec.from_contract(contract), store=shared_store)
    assert second.path == first.path
    assert [e.key for e in shared_store.environments()].count(first.key) == 1


def test_the_lock_rebuilds_the_same_versions(shared_store: EnvStore, tmp_path: Path) -> None:
    environment = ensure_environment(OLD_SIX, store=shared_store)
    rebuilt = rebuild_from_lock(environment.lock_path, target=tmp_path / "again")
    assert rebuilt.pins == read_lock(environment.lock_path).pins
    assert rebuilt.digest == environment.lock_digest
    python = tmp_path / "again" / "bin" / "python"
    assert run_in(python, "import six; print(six.__version__)") == "1.10.0"


def test_two_builds_of_one_spec_at_once_build_it_once(
    store: EnvStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = EnvSpec.from_requirements({"six": "==1.11.0"})
    calls: list[EnvSpec] = []
    real = build_module.build_environment

    def counting(spec: EnvSpec, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(spec)
        return real(spec, **kwargs)

    monkeypatch.setattr(build_module, "build_environment", counting)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_environment(spec, store=store).key))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert len(calls) == 1, "the second build waited for the first and reused it"
    assert len(store.environments()) == 1
    assert store.temp_folders() == []


def test_requirements_that_resolve_only_on_an_older_python_pick_it(store: EnvStore) -> None:
    """backports.zoneinfo 0.2.1 ships wheels up to CPython 3.8 only (3.9 has zoneinfo)."""
    older = require_interpreter((3, 8))
    spec = EnvSpec.from_requirements({"backports.zoneinfo": "==0.2.1"})
    messages: list[str] = []
    environment = ensure_environment(spec, store=store, progress=messages.append)
    assert environment.python_version == older.version_text
    assert environment.base_interpreter == older.path
    assert run_in(environment.python, "import sys; print(sys.version_info[:2])") == "(3, 8)"
    assert run_in(environment.python, "from backports import zoneinfo; print(zoneinfo.__name__)")
    assert messages[0] == f"Python {own_interpreter().version_text}: installing (wheels only)"


def test_an_unsatisfiable_requirement_is_one_line_naming_it(store: EnvStore) -> None:
    spec = EnvSpec.from_requirements({"six": "==999.0", "attrs": ""})
    with pytest.raises(EnvironmentBuildError) as caught:
        ensure_environment(spec, store=store)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Cannot build an environment for six==999.0: ")
    assert f"(interpreters tried: {own_interpreter().version_text}" in message
    assert caught.value.requirement == "six==999.0"
    assert caught.value.tried[0] == own_interpreter().version_text
    assert store.environments() == [] and store.temp_folders() == []


def test_an_install_that_does_not_import_is_resolved_as_of_an_earlier_date(
    store: EnvStore,
) -> None:
    """The contracts' classic case: scikit-learn<1.0 has wheels up to CPython 3.9 and was
    built against numpy 1.x; today's resolution pairs it with numpy 2, which fails at import
    ("numpy.dtype size changed"). Resolved as of an earlier date, it imports."""
    older = require_interpreter((3, 9))
    spec = EnvSpec.from_requirements(
        {"scikit-learn": ">=0.23.2,<1.0.0", "pandas": ">=1.2.0,<2.0.0", "numpy": ">=1.19.0"}
    )
    messages: list[str] = []
    environment = ensure_environment(spec, store=store, progress=messages.append)
    assert environment.python_version == older.version_text
    assert environment.exclude_newer is not None
    assert any("does not import" in m and "numpy.dtype size changed" in m for m in messages)
    lock = read_lock(environment.lock_path)
    assert lock.exclude_newer == environment.exclude_newer
    assert (lock.version_of("numpy") or "").startswith("1.")
    assert (lock.version_of("scikit-learn") or "").startswith("0.")
    assert run_in(environment.python, "import sklearn, pandas; print('ok')") == "ok"


def test_a_contract_without_requirements_keeps_stepkits_environment(store: EnvStore) -> None:
    assert step_environment(ScriptContract(entry_point="plain.py"), store=store) is None
    assert store.environments() == []
