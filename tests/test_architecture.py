"""docs/architecture.md names every layer import-linter enforces (make lint checks the code)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layer_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]


def test_every_enforced_layer_module_is_in_the_architecture_page() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_]+)(?:\.py|/)?`", page))
    missing = [m for m in _layer_modules() if m not in named]
    assert not missing, f"docs/architecture.md does not place: {missing}"


def test_every_module_of_the_package_has_a_layer() -> None:
    package = ROOT / "src" / "stepkit"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert modules - set(_layer_modules()) == set()
