"""pip's index configuration, handed to uv (which does not read pip.conf)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepkit.envs import uvtool
from stepkit.envs.uvtool import _options_from_pip, parse_pip_config

PIP_CONFIG_LIST = """\
:env:.find-links='/srv/wheels'
global.extra-index-url='file:///srv/a/simple file:///srv/b/simple'
global.find-links='/ignored/because/env/wins'
global.index-url='https://index.example/simple'
install.index-url='https://install.example/simple'
global.cert='/etc/ssl/certs/ca-certificates.crt'
"""


def test_pip_config_list_is_read_with_pips_precedence() -> None:
    settings = parse_pip_config(PIP_CONFIG_LIST)
    assert settings["find-links"] == "/srv/wheels"
    assert settings["index-url"] == "https://install.example/simple"
    assert settings["extra-index-url"] == "file:///srv/a/simple file:///srv/b/simple"


def test_pip_settings_become_uv_options(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2\n")
    options = _options_from_pip(
        {
            "index-url": "https://index.example/simple",
            "extra-index-url": "file:///srv/a/simple file:///srv/b/simple",
            "find-links": "/srv/wheels",
            "constraint": str(constraints),
        }
    )
    assert options == (
        "--default-index", "https://index.example/simple",
        "--index", "file:///srv/a/simple",
        "--index", "file:///srv/b/simple",
        "--find-links", "/srv/wheels",
        "--constraint", str(constraints),
        # pip takes the best version from all its indexes; uv must be told to do the same
        "--index-strategy", "unsafe-best-match",
    )  # fmt: skip


def test_a_single_index_needs_no_strategy() -> None:
    assert _options_from_pip({"index-url": "https://index.example/simple"}) == (
        "--default-index",
        "https://index.example/simple",
    )
    assert _options_from_pip({}) == ()


def test_uvs_own_index_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://mine.example/simple")
    assert uvtool.index_options() == ()


def test_this_machines_pip_configuration_is_what_uv_gets() -> None:
    """Whatever pip is configured with here reaches uv: same indexes, same links."""
    settings = uvtool.pip_settings()
    options = uvtool.index_options()
    for url in settings.get("extra-index-url", "").split():
        assert url in options
    for link in settings.get("find-links", "").split():
        assert link in options


def test_a_missing_uv_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from stepkit.errors import UvNotInstalledError

    uvtool.uv_binary.cache_clear()
    monkeypatch.setitem(sys.modules, "uv", None)  # import uv → ImportError
    try:
        with pytest.raises(UvNotInstalledError) as caught:
            uvtool.uv_binary()
    finally:
        monkeypatch.undo()
        uvtool.uv_binary.cache_clear()
    assert str(caught.value) == "Per-step environments need uv: pip install 'stepkit[envs]'."
    assert isinstance(caught.value, ModuleNotFoundError)
