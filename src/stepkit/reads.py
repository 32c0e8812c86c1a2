"""What a step script's ``main`` reads, statically (``ast``; the script is never imported).

What ``main(input_paths, output_paths, environ_vars, job_args)`` reads: the keys it
subscripts, ``.get``s or tests with ``in`` on the first three, the attributes it takes of
``job_args``, and the parameters it hands on whole (to a helper, a loop), which cannot be
followed. Discovery keeps it in each script's summary (:meth:`Reads.as_facts`); script ↔
contract alignment (:mod:`stepkit.testing.alignment`) compares it with the contract.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stepkit.child import parse_source

Param = Literal["input_paths", "output_paths", "environ_vars", "job_args"]
PARAMS: tuple[Param, ...] = ("input_paths", "output_paths", "environ_vars", "job_args")


@dataclass(frozen=True, slots=True)
class Read:
    """One key (or, of ``job_args``, attribute) that ``main`` reads, and where."""

    param: Param
    name: str
    line: int


@dataclass(frozen=True, slots=True)
class Reads:
    """What ``main`` reads of each parameter, and the parameters it hands on whole."""

    line: int  # main's own line
    reads: tuple[Read, ...]
    escapes: frozenset[Param]

    def as_facts(self) -> dict[str, Any]:
        """Plain values, as a summary keeps them."""
        return {
            "line": self.line,
            "reads": [[r.param, r.name, r.line] for r in self.reads],
            "escapes": sorted(self.escapes),
        }

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any]) -> Reads:
        reads = tuple(Read(param, name, line) for param, name, line in facts["reads"])
        return cls(facts["line"], reads, frozenset(facts["escapes"]))


def read_main(source: bytes | str, filename: str = "<script>") -> Reads | None:
    """What the module-level ``main`` of ``source`` reads, or None (no such ``main``, a
    ``main`` without the four parameters, or source that does not parse)."""
    try:
        tree = parse_source(source, filename)  # tests run in threads
    except (SyntaxError, ValueError):
        return None
    return reads_of(tree)


def reads_of(tree: ast.Module) -> Reads | None:
    """:func:`read_main` of a parsed script (what discovery keeps of each script)."""
    main = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "main"
        ),
        None,
    )
    if main is None:
        return None
    names = [a.arg for a in (*main.args.posonlyargs, *main.args.args)][:4]
    if len(names) < 4:
        return None
    params: dict[str, Param] = dict(zip(names, PARAMS, strict=True))
    reads: list[Read] = []
    used: set[int] = set()  # ids of Name nodes accounted for by a read
    for node in ast.walk(main):
        found = _read_of(node, params)
        if found is not None:
            read, name_node = found
            reads.append(read)
            used.add(id(name_node))
    escapes = frozenset(
        params[node.id]
        for node in ast.walk(main)
        if isinstance(node, ast.Name)
        and node.id in params
        and isinstance(node.ctx, ast.Load)
        and id(node) not in used
    )
    reads.sort(key=lambda r: r.line)  # ast.walk goes breadth first; the source goes down
    return Reads(main.lineno, tuple(reads), escapes)


def _read_of(node: ast.AST, params: Mapping[str, Param]) -> tuple[Read, ast.Name] | None:
    """The read ``node`` makes of a parameter: ``p["k"]``, ``p.get("k")``, ``"k" in p``,
    ``job_args.k``, ``getattr(job_args, "k")``."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        key = _text(node.slice)
        param = params.get(node.value.id)
        if key is not None and param is not None and param != "job_args":
            return Read(param, key, node.lineno), node.value
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("get", "pop", "setdefault")
            and isinstance(func.value, ast.Name)
            and params.get(func.value.id) not in (None, "job_args")
            and (key := _text(node.args[0])) is not None
        ):
            return Read(params[func.value.id], key, node.lineno), func.value
        if (
            isinstance(func, ast.Name)
            and func.id in ("getattr", "hasattr")
            and isinstance(node.args[0], ast.Name)
            and params.get(node.args[0].id) == "job_args"
            and len(node.args) > 1
            and (key := _text(node.args[1])) is not None
        ):
            return Read("job_args", key, node.lineno), node.args[0]
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and params.get(node.value.id) == "job_args"
        and not node.attr.startswith("__")
    ):
        return Read("job_args", node.attr, node.lineno), node.value
    if (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.In | ast.NotIn)
        and isinstance(node.comparators[0], ast.Name)
        and params.get(node.comparators[0].id) not in (None, "job_args")
        and (key := _text(node.left)) is not None
    ):
        name = node.comparators[0]
        return Read(params[name.id], key, node.lineno), name
    return None


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
