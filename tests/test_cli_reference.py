from __future__ import annotations

from pathlib import Path

from stepkit.cli.reference import commands, render

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_reference_page_matches_the_app() -> None:
    assert DOC.read_text() == render(), "regenerate: python -m stepkit.cli.reference > docs/cli.md"


def test_every_command_is_on_the_page_with_help() -> None:
    page = DOC.read_text()
    for path, command in commands():
        assert f"`{' '.join(path)}`" in page
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
