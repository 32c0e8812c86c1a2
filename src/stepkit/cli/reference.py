"""The CLI reference (``docs/cli.md``), generated from the Typer app itself.

``python -m stepkit.cli.reference > docs/cli.md`` rewrites it; a test fails when the
committed page and the app disagree, or when a command or option has no help text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if hasattr(command, "list_commands"):  # a group: asked as click asks (commands load lazily)
        for name in sorted(command.list_commands(None)):
            yield from _walk(command.get_command(None, name), (*path, name))


def commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every (command path, click command) of the app, root first, sorted by name."""
    import typer.main

    from stepkit.cli.app import app

    return list(_walk(typer.main.get_command(app), ("stepkit",)))


def _option_row(param: Any) -> str:
    names = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
    default = param.default
    shown = (
        "" if default in (None, False, (), []) or callable(default) else f" (default: `{default}`)"
    )
    text = (param.help or "").replace("|", "\\|").replace("\n", " ")
    return f"| {names} | {text}{shown} |"


def render() -> str:
    """The whole reference page as Markdown."""
    out = [
        "# CLI reference",
        "",
        "Generated from the app by `python -m stepkit.cli.reference`; do not edit by hand.",
        "",
    ]
    for path, command in commands():
        level = "#" * min(len(path) + 1, 4)
        out += [f"{level} `{' '.join(path)}`", "", (command.help or "").strip(), ""]
        arguments = [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]
        options = [p for p in command.params if getattr(p, "param_type_name", "") == "option"]
        if arguments:
            out += ["| argument | what it is |", "|---|---|"]
            out += [f"| `{a.name.upper()}` | {a.help or ''} |" for a in arguments]
            out.append("")
        visible = [o for o in options if not getattr(o, "hidden", False)]
        if visible:
            out += ["| option | what it does |", "|---|---|"]
            out += [_option_row(o) for o in visible]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
