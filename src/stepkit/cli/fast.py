"""The fast path of ``stepkit catalog list --json``: no Typer, no Rich, no pydantic.

A warm ``catalog list --json`` on 10,000 steps must finish in a few hundred milliseconds,
and importing the CLI framework and validating the project file would take half of that.
This module recognises exactly that command (with its options) and answers it from the
index; without a valid index it validates the project file and builds the index itself
(the CLI framework would only add time and memory to a cold start). Anything else — or
any doubt — returns ``None`` and the full CLI runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepkit.project import Project

_VALUE_OPTIONS = {
    "-w": "workspace",
    "--workspace": "workspace",
    "-j": "job_type",
    "--job-type": "job_type",
    "-t": "step_type",
    "--type": "step_type",
}


def parse(argv: list[str]) -> dict[str, Any] | None:
    """The options of ``[-p P] catalog list [-w W] [-j J] [-t T] --json``, else None."""
    args = list(argv)
    options: dict[str, Any] = {"project": None, "json": False}
    while args and args[0] in ("-p", "--project") and len(args) > 1:
        options["project"] = args[1]
        args = args[2:]
    if args[:2] != ["catalog", "list"]:
        return None
    rest = args[2:]
    while rest:
        token = rest.pop(0)
        if token == "--json":
            options["json"] = True
        elif token in _VALUE_OPTIONS and rest and not rest[0].startswith("-"):
            options[_VALUE_OPTIONS[token]] = rest.pop(0)
        else:
            return None
    return options if options["json"] else None


def write_rows_json(key: str, rows: list[str]) -> None:
    """A JSON object holding one list of JSON texts, one per line: readable, and fast (and
    written row by row: 10,000 rows joined would be a second copy of them all)."""
    out = sys.stdout
    if not rows:
        out.write(f'{{"{key}": []}}\n')
        return
    out.write(f'{{"{key}": [\n')
    for i in range(0, len(rows), 256):
        out.write(",\n".join(rows[i : i + 256]))
        out.write(",\n" if i + 256 < len(rows) else "\n")
    out.write("]}\n")


def run_fast(argv: list[str]) -> int | None:
    """Answer ``catalog list --json`` (from the index when it is valid; building it when
    not, unless a terminal wants a progress bar); None: let the full CLI do it."""
    options = parse(argv)
    if options is None:
        return None
    import gc

    from stepkit.errors import StepkitError

    # a short-lived process building ~10^6 small containers: the cyclic collector would
    # only walk them again and again; memory is returned when the process exits
    gc.disable()
    try:
        from stepkit.catalog.catalog import StepCatalog
        from stepkit.catalog.quick import quick_open

        opened = quick_open(options["project"])
        if opened is not None:
            project, index = opened
            catalog = StepCatalog(project, preloaded=index)
        elif sys.stderr.isatty():
            return None  # a (re)build the full CLI shows progress for
        else:  # no index yet, or the project file changed: the full loader decides
            loaded = _load_project(options["project"])
            if loaded is None:
                return None
            catalog = StepCatalog(loaded)
        rows = catalog.list_json(
            options.get("workspace"), options.get("job_type"), options.get("step_type")
        )
    except StepkitError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except Exception:  # anything unexpected: the full CLI runs again and reports it its way
        return None
    for warning in catalog.last_refresh.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    write_rows_json("steps", rows)
    return 0


def _load_project(path: str | None) -> Project | None:
    """The project, validated by :meth:`Project.load`; None when it has something to say
    (the full CLI says it, its way)."""
    from stepkit.errors import StepkitError
    from stepkit.project import Project

    try:
        return Project.load(path)
    except StepkitError:
        return None
