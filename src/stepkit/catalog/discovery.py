"""What each component file declares, read with ``ast`` — user code is never imported.

:func:`read_facts` turns one file into *facts*: plain dicts, lists and strings only, so
the index can store them as JSON and load them back without pydantic. The
models of :mod:`stepkit.components` are built from facts only when someone asks
(:func:`contract_from_facts`, :func:`spec_from_facts`).

Facts of every file have ``problems``: a list of ``[line, message]`` (line 0: none).
"""

from __future__ import annotations

import ast
import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.child import parse_source
from stepkit.errors import InterfaceFileError
from stepkit.literals import NotLiteral as _NotLiteral
from stepkit.reads import reads_of

if TYPE_CHECKING:
    from stepkit.components import ScriptContract, StepSpecification

#: Helpers of the registry a spec may call for its step type, statically evaluated.
SPEC_TYPE_HELPERS: Final = ("get_spec_step_type", "get_spec_step_type_with_job_type")
_ENUMS: Final = {"DependencyType", "NodeType"}
ENTRY_POINT_FIELDS: Final = ("processing_entry_point", "training_entry_point", "entry_point")

Facts = dict[str, Any]


def _literal(node: ast.AST) -> Any:
    """A literal value, with ``DependencyType.X``/``NodeType.X`` read as ``"x"``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise _NotLiteral(node)
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in _ENUMS
    ):
        return node.attr.lower()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand)
        if isinstance(value, (int, float)):
            return -value
    raise _NotLiteral(node)


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return _dotted(node.value)
    return type(node).__name__


def _assignments(tree: ast.Module) -> list[tuple[str, ast.expr, int]]:
    found: list[tuple[str, ast.expr, int]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found.append((target.id, node.value, node.lineno))
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
        ):
            found.append((node.target.id, node.value, node.lineno))
    return found


# -- contracts --------------------------------------------------------------------------------


def _contract(call: ast.Call, var: str, line: int, problems: list[list[Any]]) -> Facts:
    fields: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            problems.append(
                [kw.value.lineno, f"contract {var}: **kwargs cannot be read statically"]
            )
            continue
        try:
            fields[kw.arg] = _literal(kw.value)
        except _NotLiteral as exc:
            problems.append([exc.line or line, f"contract {var}: {kw.arg} {exc.reason(kw.value)}"])
    return {"var": var, "line": line, "class": _call_name(call), "fields": fields}


def _contracts(tree: ast.Module, problems: list[list[Any]]) -> list[Facts]:
    found = []
    for var, value, line in _assignments(tree):
        name = _call_name(value)
        if name is not None and name.endswith("Contract") and isinstance(value, ast.Call):
            found.append(_contract(value, var, line, problems))
        elif var.endswith("_CONTRACT"):
            problems.append([line, f"contract {var} is not a literal contract call"])
    return found


# -- specs ------------------------------------------------------------------------------------


def _imports(body: list[ast.stmt]) -> dict[str, tuple[str, str]]:
    """local name → (module as written, with leading dots; imported name)."""
    out: dict[str, tuple[str, str]] = {}
    for node in body:
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                out[alias.asname or alias.name] = (module, alias.name)
    return out


_NESTED: Final = ("body", "orelse", "finalbody")


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """A function's statements breadth first, as ``ast.walk`` meets them (its own before
    those of nested blocks and definitions), but without visiting every expression too."""
    queue: deque[ast.AST] = deque(body)
    while queue:
        node = queue.popleft()
        if isinstance(node, ast.stmt):
            yield node
        for name in _NESTED:  # ``except`` and ``case`` clauses are a level of their own,
            inner = getattr(node, name, None)  # as they are for ast.walk
            if inner:
                queue.extend(inner)
        queue.extend(getattr(node, "handlers", ()))
        queue.extend(getattr(node, "cases", ()))


def _contract_ref(
    node: ast.expr, imports: dict[str, tuple[str, str]], functions: dict[str, ast.FunctionDef]
) -> list[str] | None:
    """Where a spec's ``script_contract=`` comes from: [module, name], through a helper too."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        func = functions.get(node.func.id)
        if func is None:
            return None
        statements = list(_statements(func.body))
        local = {**imports, **_imports(statements)}
        for stmt in statements:
            if isinstance(stmt, ast.Return) and stmt.value is not None:
                return _contract_ref(stmt.value, local, {})
        return None
    if isinstance(node, ast.Name):
        if node.id in imports:
            module, name = imports[node.id]
            return [module, name]
        return ["", node.id]  # defined in the spec file itself
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in imports
    ):
        module, name = imports[node.value.id]
        return [f"{module}.{name}", node.attr]
    return None


def _step_type(node: ast.expr) -> tuple[str | None, str | None, str | None]:
    """(step name, job type, literal step type) declared by ``step_type=``."""
    name = _call_name(node)
    if name in SPEC_TYPE_HELPERS and isinstance(node, ast.Call):
        args = list(node.args)
        for kw in node.keywords:
            if kw.arg in ("step_name", "job_type"):
                args.insert(0 if kw.arg == "step_name" else len(args), kw.value)
        values = [_literal(arg) for arg in args[:2]]
        step = values[0] if values and isinstance(values[0], str) else None
        job = values[1] if len(values) > 1 and isinstance(values[1], str) else None
        return step, job.lower() if job else None, None
    value = _literal(node)
    if not isinstance(value, str):
        raise _NotLiteral(node)
    return None, None, value


def _spec(
    call: ast.Call,
    var: str,
    line: int,
    imports: dict[str, tuple[str, str]],
    functions: dict[str, ast.FunctionDef],
    problems: list[list[Any]],
) -> Facts:
    facts: Facts = {"var": var, "line": line, "step": None, "job_type": None, "step_type": None}
    facts.update(node_type=None, dependencies=[], outputs=[], contract_ref=None)
    for kw in call.keywords:
        try:
            if kw.arg == "step_type":
                facts["step"], facts["job_type"], facts["step_type"] = _step_type(kw.value)
            elif kw.arg == "node_type":
                facts["node_type"] = _literal(kw.value)
            elif kw.arg in ("dependencies", "outputs"):
                facts[kw.arg] = _items(kw.value, kw.arg, var, problems)
            elif kw.arg == "script_contract":
                facts["contract_ref"] = _contract_ref(kw.value, imports, functions)
        except _NotLiteral as exc:
            problems.append([exc.line or line, f"spec {var}: {kw.arg} {exc.reason(kw.value)}"])
    return facts


def _items(node: ast.expr, what: str, var: str, problems: list[list[Any]]) -> list[Facts]:
    elements = node.values if isinstance(node, ast.Dict) else getattr(node, "elts", None)
    if elements is None:
        raise _NotLiteral(node)
    out = []
    for element in elements:
        if not isinstance(element, ast.Call):
            problems.append([element.lineno, f"spec {var}: an item of {what} is not a call"])
            continue
        fields: dict[str, Any] = {}
        for kw in element.keywords:
            if kw.arg is None:
                continue
            try:
                fields[kw.arg] = _literal(kw.value)
            except _NotLiteral as exc:
                problems.append([exc.line, f"spec {var}: {what} {kw.arg} {exc.reason(kw.value)}"])
        out.append(fields)
    return out


def _specs(tree: ast.Module, problems: list[list[Any]]) -> list[Facts]:
    imports = _imports(tree.body)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    found = []
    for var, value, line in _assignments(tree):
        if _call_name(value) in ("StepSpecification", "StepSpec") and isinstance(value, ast.Call):
            found.append(_spec(value, var, line, imports, functions, problems))
    return found


# -- configs, builders, hyperparameters --------------------------------------------------------


def _classes(tree: ast.Module, *, with_fields: bool) -> list[Facts]:
    found = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        facts: Facts = {"name": node.name, "line": node.lineno}
        facts["bases"] = [_dotted(base) for base in node.bases]
        methods = [
            n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        facts["has_run"] = "run" in methods
        if with_fields:
            facts["fields"] = _fields(node)
        found.append(facts)
    return found


def _fields(node: ast.ClassDef) -> list[list[Any]]:
    """[[name, annotation, has_default, default-or-None, default-is-literal]] per field."""
    out: list[list[Any]] = []
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        name = stmt.target.id
        if name.startswith("_") or name == "model_config":
            continue
        annotation = ast.unparse(stmt.annotation)
        if annotation.startswith("ClassVar"):
            continue
        if stmt.value is None:
            out.append([name, annotation, False, None, True])
            continue
        value: ast.expr = stmt.value
        if _call_name(value) == "Field" and isinstance(value, ast.Call):
            default = next((kw.value for kw in value.keywords if kw.arg == "default"), None)
            if default is None and value.args:
                default = value.args[0]
            if default is None or (isinstance(default, ast.Constant) and default.value is ...):
                out.append([name, annotation, False, None, True])
                continue
            value = default
        try:
            out.append([name, annotation, True, _literal(value), True])
        except _NotLiteral:
            out.append([name, annotation, True, ast.unparse(value), False])
    return out


# -- scripts ----------------------------------------------------------------------------------


def _script(tree: ast.Module) -> Facts:
    reads = reads_of(tree)
    main: Facts | None = None
    has_main_block = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main":
            args = node.args
            params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            main = {"line": node.lineno, "params": params}
        elif isinstance(node, ast.If) and _is_main_guard(node.test):
            has_main_block = True
    return {
        "main": main,
        "has_main_block": has_main_block,
        "reads": reads.as_facts() if reads is not None else None,
    }


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.comparators) == 1):
        return False
    sides = [test.left, test.comparators[0]]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    consts = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and consts == {"__main__"}


# -- one file ---------------------------------------------------------------------------------


def _interface(text: str, filename: str, *, whole: bool) -> Facts:
    """An interface file's facts, from :mod:`stepkit.interface`: its summary read from the
    YAML nodes; ``whole``: the whole file checked against the models too."""
    # the YAML nodes, not the models: PyYAML (only projects with interface files pay for
    # it), never pydantic
    from stepkit.registry.interface_nodes import summarize_interface

    path = Path(filename)
    facts: Facts = {"problems": [], "checked": whole}
    try:
        facts["interface"] = summarize_interface(text, path=path)
        if whole:
            from stepkit.interface import parse_interface

            parse_interface(text, path=path, workspace_id="")
    except InterfaceFileError as exc:
        where = f"{filename}:{exc.line}: " if exc.line else f"{filename}: "
        facts["problems"].append([exc.line or 0, str(exc).removeprefix(where)])
        facts["broken"] = "interface" not in facts
        facts["checked"] = True  # a file the summary cannot be read from has no more to say
    return facts


def parse_text(text: str, component: str, *, filename: str = "<text>", whole: bool = True) -> Facts:
    """The facts of one component file's source text (an interface: checked whole, unless
    ``whole`` is False)."""
    if component == "interface":
        return _interface(text, filename, whole=whole)
    problems: list[list[Any]] = []
    facts: Facts = {"problems": problems}
    try:
        tree = parse_source(text, filename)  # CPython 3.11's ast.parse is not thread-safe
    except SyntaxError as exc:
        problems.append([exc.lineno or 0, f"syntax error: {exc.msg}"])
        facts["broken"] = True
        return facts
    if component == "contract":
        facts["contracts"] = _contracts(tree, problems)
    elif component == "spec":
        facts["specs"] = _specs(tree, problems)
        contracts = _contracts(tree, [])
        if contracts:  # a spec file may define its contract inline
            facts["contracts"] = contracts
    elif component == "script":
        facts.update(_script(tree))
    else:
        facts["classes"] = _classes(tree, with_fields=component in ("config", "hyperparams"))
    return facts


def read_facts(path: str, component: str, *, whole: bool = True) -> Facts:
    """The facts of the file at ``path``; an unreadable or non-UTF-8 file is a problem."""
    try:
        with open(path, "rb", buffering=0) as handle:  # read whole: no buffer needed
            data = handle.readall()
    except OSError as exc:
        return {"problems": [[0, f"cannot be read: {exc.strerror}"]], "broken": True}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return {"problems": [[line, "is not UTF-8 text"]], "broken": True}
    return parse_text(text, component, filename=path, whole=whole)


# -- facts → models (pydantic, on demand) ------------------------------------------------------


def contract_from_facts(facts: Facts) -> ScriptContract:
    """The :class:`ScriptContract` a contract's facts describe."""
    from stepkit.components import ScriptContract

    return ScriptContract(**facts["fields"])


def spec_from_facts(
    facts: Facts, *, step_type: str, contract: ScriptContract | None
) -> StepSpecification:
    """The :class:`StepSpecification` a spec's facts describe, its step type evaluated."""
    from stepkit.components import DependencySpec, OutputSpec, StepSpecification

    return StepSpecification(
        step_type=step_type,
        node_type=facts["node_type"],
        dependencies=[DependencySpec(**d) for d in facts["dependencies"]],
        outputs=[OutputSpec(**o) for o in facts["outputs"]],
        script_contract=contract,
    )


# -- summaries: what the index keeps of each file -----------------------------------------------


_SPEC_KEYS: Final = ("var", "line", "step", "job_type", "step_type", "contract_ref", "node_type")


def summarize(facts: Facts, component: str) -> Facts:
    """The part of a file's facts that resolution, listing and ``check`` need.

    Small on purpose: the index keeps one per file; everything else is read again from the
    file when a query asks for it (:func:`read_facts`).
    """
    out: Facts = {"problems": facts.get("problems", [])}
    if facts.get("broken"):  # nothing could be read: its first problem says why
        out["broken"] = True
    if "classes" in facts:
        out["classes"] = [
            {
                "name": c["name"],
                "has_run": c["has_run"],
                "entry_points": [
                    f[3]
                    for f in c.get("fields", ())
                    if f[0] in ENTRY_POINT_FIELDS and f[2] and isinstance(f[3], str)
                ],
            }
            for c in facts["classes"]
        ]
    if "specs" in facts:
        out["specs"] = [
            {k: s[k] for k in _SPEC_KEYS}
            | {"dependencies": len(s["dependencies"]), "outputs": len(s["outputs"])}
            for s in facts["specs"]
        ]
    if "contracts" in facts:
        out["contracts"] = [
            {"var": c["var"], "line": c["line"], "entry_point": c["fields"].get("entry_point")}
            for c in facts["contracts"]
        ]
    if component == "interface":
        out["checked"] = facts.get("checked", True)
        if "interface" in facts:
            out["interface"] = facts["interface"]
    if component == "script" and "main" in facts:
        main = facts["main"]
        out["main"] = main["params"] if main else None
        out["main_block"] = facts["has_main_block"]
        out["reads"] = facts["reads"]  # what main reads of its parameters (stepkit.reads)
    return out


def read_summary(path: str, component: str, *, whole: bool = False) -> str:
    """The summary of one file as the index keeps it: JSON text, keys sorted (so equal
    summaries are equal texts, and an edit that keeps declarations is seen as such). An
    interface is checked whole only when ``whole`` (what ``check`` asks for, once)."""
    facts = read_facts(path, component, whole=whole)
    return json.dumps(summarize(facts, component), sort_keys=True)


def read_summaries(jobs: list[tuple[str, str]], whole: bool = False) -> list[str]:
    """Summaries of many (path, component) pairs: the unit of work of a parsing process
    (text crosses the process boundary, never a syntax tree)."""
    return [read_summary(path, component, whole=whole) for path, component in jobs]
