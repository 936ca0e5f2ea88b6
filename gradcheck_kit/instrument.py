"""Rewrite a forward's code so that every statement reports the names it binds, as it binds them.

After each statement that binds names (``x = ...``, ``a, b = ...``, ``x += ...``,
``x: T = ...``, a walrus, a ``for`` or ``with ... as`` target) the rewritten code calls
``OBSERVE({"x": x}, line)`` for exactly those names, and after ``W.requires_grad_()`` or
``W.attr = ...`` for ``W``. Nested functions, lambdas and classes are left alone: like the
old tracer, capture sees the forward's own scope only. The rewritten code is compiled
with the forward's file name and line numbers, so coverage tools, debuggers and
tracebacks attribute every line to the user's file, and nothing is traced.

Why: the capture this replaces ran the forward under ``sys.settrace`` and, at every line
event, looked at every local. That displaced any installed tracer (under ``pytest --cov``
every forward line showed as not covered) and cost O(lines x locals): capturing a chain
of 3,001 named steps took 2,335 ms, against 61 ms rewritten (16 ms at 1,001 steps
against 283 ms; one thread, a shared and loaded 2-core machine; the steps themselves,
forward and backward, are most of the 61 ms). The rewritten code is compiled once per
function or code string and cached.
"""

from __future__ import annotations
import __future__

import ast
import copy
import functools
import inspect
import operator
import types
from collections.abc import Iterator
from typing import Any

from .parsing import parse

OBSERVE = "__gradcheck_observe__"
"""The name the rewritten code calls after each binding statement: ``OBSERVE(names, line)``."""
FINISH = "__gradcheck_finish__"
"""A function forward's extra keyword: called with ``locals()`` when the forward returns or raises."""
RETURNED = "__gradcheck_returned__"
"""The local a return with a walrus stores its value in, so that the names it binds are observed first."""
LOCALS = "__gradcheck_locals__"
"""A function forward's extra keyword: the builtin ``locals``, which a forward's own local of that name shadows."""

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_UNSURE = (*_SCOPES, ast.stmt, ast.IfExp, ast.BoolOp, *_COMPREHENSIONS)
"""Where a walrus may not run, or binds in another scope: its names are not observed as surely bound."""


_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, f).compiler_flag for f in __future__.all_feature_names)
)
"""The compiler flags ``from __future__ import ...`` sets: a function's code keeps them in ``co_flags``."""


class InstrumentError(Exception):
    """The forward's source cannot be read or rewritten."""


@functools.lru_cache(maxsize=256)
def module_code(source: str, filename: str) -> types.CodeType:
    """``source`` (module-level forward code) compiled with an observation after each binding."""
    tree = parse(source, filename)
    tree.body = _instrument(tree.body, None)
    return compile(ast.fix_missing_locations(tree), filename, "exec")


def function(forward: types.FunctionType) -> types.FunctionType:
    """``forward`` rewritten: same globals, closure and defaults, plus the keyword-only hooks (``OBSERVE`` ...)."""
    code = function_code(forward.__code__)
    cells = dict(zip(forward.__code__.co_freevars, forward.__closure__ or (), strict=True))
    closure = tuple(cells[name] for name in code.co_freevars)
    rewritten = types.FunctionType(code, forward.__globals__, forward.__name__, forward.__defaults__, closure)
    rewritten.__kwdefaults__ = forward.__kwdefaults__
    return rewritten


@functools.lru_cache(maxsize=256)
def function_code(code: types.CodeType) -> types.CodeType:
    """The rewritten code object of a function whose code is ``code`` (read from its source file)."""
    node = _function_node(code)  # its decorators are compiled with it but never run
    _same_code(code, _compiled(copy.deepcopy(node), code))
    local = _locals(node)
    node.body = [_finishing(_instrument(node.body, local), node)]
    node.args.kwonlyargs += [ast.arg(OBSERVE), ast.arg(FINISH), ast.arg(LOCALS)]
    node.args.kw_defaults += [None, None, None]
    return _compiled(node, code)


def _compiled(node: ast.FunctionDef, code: types.CodeType) -> types.CodeType:
    """``node`` compiled as ``code`` was: same file, ``__future__`` flags and closure cells."""
    outer = _enclosing(node, code.co_freevars, _owner_class(code))
    flags = code.co_flags & _FUTURE_FLAGS
    compiled = compile(ast.fix_missing_locations(outer), code.co_filename, "exec", flags=flags, dont_inherit=True)
    return _find_code(compiled, code.co_name, {"__gradcheck_outer__", _owner_class(code)})


def _function_node(code: types.CodeType) -> ast.FunctionDef:
    """The ``def`` of ``code``, parsed from its file with the file's line numbers and columns."""
    try:
        lines, start = inspect.getsourcelines(code)
    except (OSError, TypeError) as error:
        raise InstrumentError(
            f"cannot read the source of {code.co_name}() in {code.co_filename} ({error}); "
            f"define the forward in a file, or pass it as a code string"
        ) from None
    text = "".join(lines)
    indented = text[:1].isspace()
    tree = parse("if 1:\n" + text if indented else text, code.co_filename)
    node = tree.body[0].body[0] if indented else tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        kind = "an async def" if isinstance(node, ast.AsyncFunctionDef) else "not a def"
        raise InstrumentError(f"{code.co_name}() in {code.co_filename}, line {start}, is {kind}; write a plain def")
    ast.increment_lineno(node, start - 2 if indented else start - 1)
    return node


def _owner_class(code: types.CodeType) -> str | None:
    """The name of the class a method's code was defined in (``Net`` for ``Net.forward``), else None."""
    parts = getattr(code, "co_qualname", code.co_name).split(".")
    return parts[-2] if len(parts) > 1 and parts[-2] != "<locals>" else None


def _enclosing(node: ast.FunctionDef, freevars: tuple[str, ...], owner: str | None) -> ast.Module:
    """A module holding ``node`` inside a function that binds ``freevars``, so they stay closure cells, and a
    method inside a class of its class's name, so that its private names (``self.__scale``) are mangled as
    they were (compiled outside it, ``self.__scale`` read another attribute)."""
    if owner is not None:
        shell = ast.ClassDef(owner, [], [], [node], [])
        node = ast.copy_location(shell, node)
        freevars = tuple(name for name in freevars if name != "__class__")  # the class gives its own
    if not freevars:
        return ast.Module(body=[node], type_ignores=[])
    cells = [
        ast.copy_location(ast.Assign([ast.Name(name, ast.Store())], ast.Constant(None)), node) for name in freevars
    ]
    outer = ast.copy_location(ast.FunctionDef("__gradcheck_outer__", _no_arguments(), [*cells, node], []), node)
    return ast.Module(body=[outer], type_ignores=[])


def _no_arguments() -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])


def _find_code(code: types.CodeType, name: str, shells: set[str | None]) -> types.CodeType:
    """The code object named ``name`` among the constants of ``code``, searched depth first through the
    ``shells`` :func:`_enclosing` put around it."""
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            if constant.co_name == name and constant.co_flags & inspect.CO_OPTIMIZED:  # a function, not its class shell
                return constant
            found = _find_code(constant, name, shells) if constant.co_name in shells else None
            if found is not None:
                return found
    raise InstrumentError(f"cannot find {name}() in its rewritten source")


def _same_code(original: types.CodeType, recompiled: types.CodeType) -> None:
    """The source read from the file must be the code that runs (the file may have changed since). pytest
    rewrites the ``assert`` statements of test modules, adding names, constants and lines of its own: there the
    source's must be among the code's (a forward with an ``assert`` in a test file was refused as edited)."""
    ours, theirs = _fingerprint(recompiled), _fingerprint(original)
    if _rewritten_by_pytest(original):
        same = all(set(mine) <= set(run) for mine, run in zip(ours, theirs, strict=True))
    else:
        same = ours == theirs
    if not same:
        raise InstrumentError(
            f"the source of {original.co_name}() in {original.co_filename} does not match the code that runs "
            f"(was the file edited after it was imported?)"
        )


def _rewritten_by_pytest(code: types.CodeType) -> bool:
    """``code`` is a function whose asserts pytest rewrote (its helpers are named ``@py...``, no Python name)."""
    return any(name.startswith("@py") for name in (*code.co_names, *code.co_varnames))


def _fingerprint(code: types.CodeType) -> tuple[Any, ...]:
    """What an edit of a function's source changes, but not the module around it: its names,
    constants and lines (the bytecode itself depends on the module, e.g. on its imports)."""
    constants = tuple(c for c in code.co_consts if not isinstance(c, types.CodeType))
    lines = sorted({line for _, _, line in code.co_lines() if line is not None})
    return code.co_varnames, code.co_names, constants, lines


def _finishing(body: list[ast.stmt], node: ast.FunctionDef) -> ast.Try:
    """``try: body finally: FINISH(LOCALS())``: the forward's locals as it returns or raises."""
    call = ast.Call(ast.Name(FINISH, ast.Load()), [ast.Call(ast.Name(LOCALS, ast.Load()), [], [])], [])
    finish = ast.copy_location(ast.Expr(call), node)
    return ast.copy_location(ast.Try(body=body, handlers=[], orelse=[], finalbody=[finish]), node)


def _instrument(body: list[ast.stmt], local: frozenset[str] | None) -> list[ast.stmt]:
    """``body`` with an observation after each binding statement (``local``: the names to observe, None = all)."""
    rewritten: list[ast.stmt] = []
    for statement in body:
        rewritten.append(statement)
        for field, names in _nested_bodies(statement, local):
            setattr(
                statement, field, _observing(names, statement, local) + _instrument(getattr(statement, field), local)
            )
        if isinstance(statement, ast.Return) and statement.value is not None and _named_exprs([statement], _SCOPES):
            rewritten[-1:] = _returning_after_observing(statement, local)
        elif not _is_compound(statement):
            rewritten += _observing(_bound(statement), statement, local)
            rewritten += _observing_if_bound(_maybe_walrus(statement), statement, local)
    return rewritten


def _returning_after_observing(statement: ast.Return, local: frozenset[str] | None) -> list[ast.stmt]:
    """``return (y := h.tanh()).sum()`` as ``RETURNED = (y := ...).sum()``, the walrus names observed, then
    ``return RETURNED``: a step bound in the return is observed before the forward leaves (unobserved, a wrong
    ``dy`` could only be a failing row saying so)."""
    value = ast.copy_location(ast.Assign([ast.Name(RETURNED, ast.Store())], statement.value), statement)
    observed = _observing(_walrus([statement]), statement, local)
    observed += _observing_if_bound(_maybe_walrus(statement), statement, local)
    returned = ast.copy_location(ast.Return(ast.Name(RETURNED, ast.Load())), statement)
    return [value, *observed, returned]


def _maybe_walrus(statement: ast.stmt) -> list[str]:
    """Names a simple statement's ``:=`` may bind under a condition (``(y := f(h)) if c else 0``), which
    :func:`_bound` cannot be sure of. One in a comprehension is bound once per element (``[z for j in r if (z :=
    h[:, j].tanh()) is not None]``): no step, and not observed."""
    sure = set(_walrus([statement]))
    maybe = _named_exprs([statement], (*_SCOPES, ast.stmt, *_COMPREHENSIONS))
    return [name for name in dict.fromkeys(maybe) if name not in sure]


def _observing_if_bound(names: list[str], statement: ast.stmt, local: frozenset[str] | None) -> list[ast.stmt]:
    """``try: OBSERVE({"y": y}, line) except NameError: pass`` for each of ``names``: observed when it was bound,
    left alone when its branch did not run (a walrus under a condition; unobserved, a wrong ``dy`` went unjudged)."""
    guarded = []
    for observation in (_observing([name], statement, local) for name in names):
        handler = ast.ExceptHandler(ast.Name("NameError", ast.Load()), None, [ast.Pass()])
        guarded += [ast.copy_location(ast.Try(observation, [handler], [], []), statement)] if observation else []
    return guarded


def _nested_bodies(statement: ast.stmt, local: frozenset[str] | None) -> Iterator[tuple[str, list[str]]]:
    """Each statement list inside ``statement`` and the names bound on entering it (loop or ``with`` targets)."""
    if isinstance(statement, _SCOPES):
        return
    header = _walrus(_header(statement))
    entering = header
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        entering = _targets(statement.target) + header
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        entering = [name for item in statement.items if item.optional_vars for name in _targets(item.optional_vars)]
        entering += header
    yield from (
        (field, entering if field == "body" else header if field == "orelse" else [])
        for field in ("body", "orelse", "finalbody")
        if isinstance(getattr(statement, field, None), list)
    )
    for handler in getattr(statement, "handlers", []):
        handler.body = _instrument(handler.body, local)
    for case in getattr(statement, "cases", []):
        case.body = _instrument(case.body, local)


def _is_compound(statement: ast.stmt) -> bool:
    return isinstance(getattr(statement, "body", None), list) or isinstance(statement, ast.Match)


def _header(statement: ast.stmt) -> list[ast.AST]:
    """The expressions a compound statement evaluates before its body (where a walrus may bind)."""
    if isinstance(statement, (ast.If, ast.While)):
        return [statement.test]
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        return [statement.iter]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        return [item.context_expr for item in statement.items]
    return []


def _bound(statement: ast.stmt) -> list[str]:
    """The names a simple statement binds or changes through an attribute (``W.requires_grad_()``)."""
    names: list[str] = []
    if isinstance(statement, ast.Assign):
        for target in statement.targets:
            names += _targets(target) + _receivers(target)
    elif isinstance(statement, ast.AugAssign) or (isinstance(statement, ast.AnnAssign) and statement.value):
        names += _targets(statement.target) + _receivers(statement.target)
    elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        names += _receivers(statement.value.func)
    return list(dict.fromkeys(names + _walrus([statement])))


def _targets(target: ast.expr) -> list[str]:
    """Names bound by an assignment target: ``x``, ``a, (b, *c)``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _targets(element)]
    if isinstance(target, ast.Starred):
        return _targets(target.value)
    return []


def _receivers(target: ast.expr) -> list[str]:
    """The name whose attribute or item is set or called: ``W`` in ``W.requires_grad = True``."""
    if isinstance(target, (ast.Attribute, ast.Subscript)) and isinstance(target.value, ast.Name):
        return [target.value.id]
    return []


def _walrus(nodes: list[ast.AST]) -> list[str]:
    """Names surely bound by ``:=`` in ``nodes``: not under a condition, a comprehension or a new scope."""
    return _named_exprs(nodes, _UNSURE)


def _named_exprs(nodes: list[ast.AST], skipping: tuple[type[ast.AST], ...]) -> list[str]:
    """The targets of the ``:=`` in ``nodes``, in order, not looking inside the ``skipping`` kinds of node."""
    found: list[str] = []
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.NamedExpr):
            found.append(node.target.id)
        stack.extend(reversed([c for c in ast.iter_child_nodes(node) if not isinstance(c, skipping)]))
    return found


def _observing(names: list[str], statement: ast.stmt, local: frozenset[str] | None) -> list[ast.stmt]:
    """``[OBSERVE({"x": x, ...}, line)]`` for the observable ``names``, at ``statement``'s line; [] if none."""
    names = [name for name in names if local is None or name in local]
    if not names:
        return []
    mapping = ast.Dict([ast.Constant(name) for name in names], [ast.Name(name, ast.Load()) for name in names])
    call = ast.Call(ast.Name(OBSERVE, ast.Load()), [mapping, ast.Constant(statement.lineno)], [])
    return [ast.copy_location(ast.Expr(call), statement)]


def _locals(node: ast.FunctionDef) -> frozenset[str]:
    """The function's own local names (parameters and names it binds, less ``global``/``nonlocal`` ones)."""
    arguments = node.args
    names = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
    names |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    declared: set[str] = set()
    stack: list[ast.AST] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
        elif isinstance(child, (ast.Global, ast.Nonlocal)):
            declared.update(child.names)
        if not isinstance(child, _SCOPES):
            stack.extend(ast.iter_child_nodes(child))
    return frozenset(names - declared)
