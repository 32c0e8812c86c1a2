"""Literal values read from Python source with :mod:`ast`, and what to tell a user when a
value is not one.

Contracts, specs and registries are read without running them, so a value must be written
out (``"/opt/ml/input"``), not computed (``os.path.join(BASE, "input")``). When it is
computed, :class:`NotLiteral` says what the expression is in the words a user would use —
"a call to os.path.join(...)", "the name BASE", "an f-string" — never an ``ast`` class name.
"""

from __future__ import annotations

import ast
from typing import Any, Final

_SHOWN: Final = 40  # characters of source shown for an expression
_CONTAINERS: Final = (ast.List, ast.Tuple, ast.Set, ast.Dict)
_KINDS: Final[dict[type[ast.AST], str]] = {
    ast.JoinedStr: "an f-string",
    ast.BinOp: "an arithmetic expression",
    ast.UnaryOp: "an expression",
    ast.BoolOp: "a logical expression",
    ast.Compare: "a comparison",
    ast.IfExp: "a conditional expression",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Starred: "an unpacking",
    ast.NamedExpr: "an assignment expression",
    ast.Await: "an await expression",
    ast.Yield: "a yield expression",
    ast.YieldFrom: "a yield expression",
}


class NotLiteral(ValueError):
    """A part of an expression that only running the code could evaluate.

    ``node`` is that part, ``line`` its line (0 when unknown); the message describes it.
    """

    def __init__(self, node: ast.AST) -> None:
        self.node = node
        self.line: int = getattr(node, "lineno", 0)
        super().__init__(describe(node))

    def reason(self, value: ast.AST) -> str:
        """Why ``value`` (the whole expression, of which :attr:`node` is a part) cannot be read.

        The predicate of a message: ``f"{key} {exc.reason(value)}"`` reads "key is a call to
        f(...), not a literal value: write the value itself".
        """
        if isinstance(self.node, ast.Constant):  # a literal, but not of the kind expected
            return f"is {describe(self.node)}, which is not a value of the expected kind"
        if self.node is not value:
            verb = "holds"
        elif isinstance(self.node, (ast.Name, ast.Attribute)):
            verb = "refers to"
        else:
            verb = "is"
        return f"{verb} {describe(self.node)}, not a literal value: write the value itself"


def describe(node: ast.AST) -> str:
    """An expression as a user names it: "a call to os.path.join(...)", "the name BASE"."""
    if isinstance(node, ast.Call):
        return f"a call to {_source(node.func)}(...)"
    if isinstance(node, ast.Name):
        return f"the name {node.id}"
    if isinstance(node, ast.Attribute):
        return _source(node)
    if isinstance(node, ast.Subscript):
        return f"an item of {_source(node.value)} ({_source(node)})"
    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.Dict):
        return f"a dict that unpacks another ({_source(node)})"
    kind = next((words for cls, words in _KINDS.items() if isinstance(node, cls)), "an expression")
    return f"{kind} ({_source(node)})"


def literal_eval(node: ast.expr) -> Any:
    """:func:`ast.literal_eval`, raising :class:`NotLiteral` for the part that is not literal."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise NotLiteral(_offending_part(node)) from None


def _offending_part(node: ast.expr) -> ast.expr:
    """The innermost element of a list/tuple/set/dict that ``ast.literal_eval`` refuses."""
    if not isinstance(node, _CONTAINERS):
        return node
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):  # {**other}
            return node
        parts: list[ast.expr] = [*node.keys, *node.values]  # type: ignore[list-item]
    else:
        parts = list(node.elts)
    for part in parts:
        try:
            ast.literal_eval(part)
        except ValueError:
            return _offending_part(part)
    return node


def _source(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
