"""The names a cell takes from the notebook: those it reads before it binds them.

A name the cell binds before reading it is the cell's own, whatever the notebook holds
under it: after a first run (or a plain run of the same code) the notebook's ``h`` is the
last run's tensor, and ``%%forward`` taking it as an input made a parameter of it. Reads
are walked in the order Python evaluates them (``h = h + 1`` reads ``h`` first; a loop
body binds for the lines after it), comprehensions in their own scope; the body of a
function or lambda runs later, so a name it reads is taken unless the cell binds it anywhere.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from ..parsing import parse


def reads(code: str) -> list[str]:
    """Names ``code`` reads before binding them, in first-read order (none when it is not Python:
    running it will say why)."""
    try:
        tree = parse(code)
    except SyntaxError:
        return []
    walk = _Reads()
    walk.visit(tree)
    return walk.taken()


class _Reads(ast.NodeVisitor):
    """Walks statements in evaluation order, keeping each name read while it is not yet bound."""

    def __init__(self, bound: Iterable[str] = ()) -> None:
        self.bound = set(bound)
        self.free: dict[str, None] = {}
        self.later: dict[str, None] = {}

    def taken(self) -> list[str]:
        """The names read before bound, then those a function body reads that the cell never binds."""
        return [*self.free, *(name for name in self.later if name not in self.bound and name not in self.free)]

    def read(self, name: str) -> None:
        if name not in self.bound:
            self.free.setdefault(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.bound.add(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        """``dh += x`` reads ``dh`` before it binds it."""
        if isinstance(node.target, ast.Name):
            self.read(node.target.id)
        self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.bound.add(node.name)
        for statement in node.body:
            self.visit(statement)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self.bound.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node.generators, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node.generators, [node.key, node.value])

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expression in [*node.decorator_list, *node.args.defaults, *filter(None, node.args.kw_defaults)]:
            self.visit(expression)
        self._later(_parameters(node.args), node.body)
        self.bound.add(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expression in [*node.args.defaults, *filter(None, node.args.kw_defaults)]:
            self.visit(expression)
        self._later(_parameters(node.args), [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in [*node.decorator_list, *node.bases, *(keyword.value for keyword in node.keywords)]:
            self.visit(expression)
        self._later([], node.body)
        self.bound.add(node.name)

    def _comprehension(self, generators: list[ast.comprehension], results: list[ast.expr]) -> None:
        """Its targets are bound only inside it."""
        outside = set(self.bound)
        for generator in generators:
            self.visit(generator.iter)
            self.visit(generator.target)
            for condition in generator.ifs:
                self.visit(condition)
        for result in results:
            self.visit(result)
        self.bound = outside

    def _later(self, parameters: list[str], body: list[ast.stmt]) -> None:
        """A body that runs when called: the names it reads besides its parameters and its own bindings."""
        inner = _Reads(parameters)
        for node in body:
            inner.visit(node)
        for name in inner.taken():
            self.later.setdefault(name)


def _parameters(arguments: ast.arguments) -> list[str]:
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
    return [arg.arg for arg in every if arg is not None]
