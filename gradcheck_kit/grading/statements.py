"""Which reads of a gradient are *uses*: a statement uses a gradient only when it computes another from it.

Independent grading records a gradient (and swaps in the reference) when a statement
uses it. Looking at a gradient is not using it: a statement that binds nothing a later
gradient is computed from (``print(dX.shape)``, ``assert ...``, a bare ``dX.shape``, a
call of a helper that assigns no gradient, a plot) is *looking*, and none of its reads
count. Within a computing statement, the names it builds (assigns, augments, stores
into, mutates in place, or has a function it calls assign through ``global``) and the
names only shown to ``cmp(...)`` do not count either.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

CMP = "cmp"


@dataclass(frozen=True)
class Role:
    """How one top-level statement's reads of gradients are treated."""

    looking: bool
    """Binds nothing that a gradient is computed from: no read in it records or substitutes."""
    exempt: frozenset[str] = frozenset()
    """In a computing statement, the names whose reads do not count (built here, or shown to cmp)."""
    writes: frozenset[str] = frozenset()
    """The names the statement binds or changes (directly, or through a function that assigns globals)."""
    rescales: frozenset[str] = frozenset()
    """The tracked names the statement writes from no tracked name but those it writes (``dX /= n``,
    ``dX = dX / n``, ``dW2, db2 = dW2 / n, db2 / n``, or a helper doing so through ``global``): a change of a
    gradient already computed, not a step in building it from others."""
    derives: frozenset[str] = frozenset()
    """The tracked names the statement writes from another tracked name (``dX = dY @ W``)."""
    finishes: frozenset[str] = frozenset()
    """The tracked names the statement binds to a temporary rescaled after it took a gradient's value
    (``t = h.T @ dlogits; t /= n; dW2 = t``): like ``dW2 /= n`` after ``dW2 = h.T @ dlogits``, a late change."""

    def counts(self, name: str) -> bool:
        """Whether a read of ``name`` during this statement is a use."""
        return not self.looking and name not in self.exempt


LOOKING = Role(looking=True)
"""The role of code outside any statement (the end of the run)."""


def roles(statements: Sequence[ast.stmt], tracked: Collection[str]) -> list[Role]:
    """The role of each statement: computing when it writes a gradient or a name a later computing
    statement reads (``t = dX.sum(0)`` then ``dY = t``), looking otherwise. What a statement writes, and
    from what, includes what the functions it calls assign through ``global``."""
    graded = set(tracked)
    writers = _global_writers(statements, graded)
    walks = [_Names.of(statement) for statement in statements]
    flows = [_flow(names, writers) for names in walks]
    needed: set[str] = set(graded)
    computing = [False] * len(walks)
    for index in range(len(walks) - 1, -1, -1):
        if flows[index].keys() & needed:
            computing[index] = True
            needed |= walks[index].read | walks[index].shown | set().union(*flows[index].values())
    return [
        Role(
            looking=not flag,
            exempt=frozenset(flow.keys() | (names.shown - names.read)) if flag else frozenset(),
            writes=frozenset(flow),
            rescales=_rescales(flow, graded),
            derives=_derives(flow, graded),
            finishes=finished,
        )
        for names, flow, flag, finished in zip(walks, flows, computing, _finishes(flows, graded), strict=True)
    ]


Flow = dict[str, frozenset[str]]
"""Each name a statement writes -> the names its new value is computed from."""


def _flow(names: _Names, writers: Mapping[str, Flow]) -> Flow:
    """What a statement writes and from what, with what each function it calls assigns through ``global``."""
    flow = dict(names.sources)
    for call in names.called & writers.keys():
        for name, sources in writers[call].items():
            flow[name] = flow.get(name, frozenset()) | sources
    return flow


def _rescales(flow: Flow, tracked: set[str]) -> frozenset[str]:
    """The tracked names a statement writes from no tracked name but those it writes (``dX = dX / n``,
    ``dW2, db2 = dW2 / n, db2 / n``)."""
    written = flow.keys() & tracked
    return frozenset(name for name in written if flow[name] & tracked <= written)


def _derives(flow: Flow, tracked: set[str]) -> frozenset[str]:
    """The tracked names a statement writes from a tracked name it does not write."""
    written = flow.keys() & tracked
    return frozenset(name for name in written if flow[name] & tracked - written)


def _finishes(flows: Sequence[Flow], tracked: set[str]) -> list[frozenset[str]]:
    """For each statement, the tracked names it binds to temporaries that were rescaled (rewritten from nothing
    holding a gradient but themselves, or from such temporaries only) after they took a gradient's value, and
    to no other gradient. A temporary rebuilt from a gradient (``t += dY @ W``) is no longer rescaled."""
    holding: set[str] = set()
    rescaled: set[str] = set()
    finishes = []
    for flow in flows:
        written = flow.keys() & tracked
        finished, grows, scaled, fresh = set(), set(), set(), set()
        for name, sources in flow.items():
            feeders = {source for source in sources - {name} if source in tracked or source in holding}
            if name in tracked:
                temporaries = feeders - tracked
                if temporaries and temporaries <= rescaled and feeders & tracked <= written:
                    finished.add(name)
            elif feeders - rescaled:
                grows.add(name)
            elif feeders or name in holding:
                scaled.add(name)
            else:
                fresh.add(name)
        holding = (holding - fresh) | grows | scaled
        rescaled = (rescaled - grows - fresh) | scaled
        finishes.append(frozenset(finished))
    return finishes


def exempt_names(statement: ast.stmt) -> frozenset[str]:
    """Names whose reads during ``statement`` must not record them: the ones it writes or only shows to cmp."""
    names = _Names.of(statement)
    return frozenset(names.written | (names.shown - names.read))


def rebinds(statements: Sequence[ast.stmt], line: int, name: str) -> bool:
    """Whether the top-level statement at ``line`` binds ``name`` anew (``=``, unpacking, a ``for`` target, or a
    top-level function it calls), where ``name += ...`` and ``name[i] = ...`` change the tensor it holds in place."""
    statement = next((statement for statement in statements if statement.lineno == line), None)
    if statement is None:
        return False
    functions = {node.name: node for node in statements if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    called = _Names.of(statement).called & functions.keys()
    return any(_stores(node, name) for node in [statement, *(functions[call] for call in called)])


def _stores(node: ast.AST, name: str) -> bool:
    """Whether ``name`` is a plain target somewhere in ``node``, other than an augmented assignment's."""
    augmented = {id(inner.target) for inner in ast.walk(node) if isinstance(inner, ast.AugAssign)}
    stored = [inner for inner in ast.walk(node) if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store)]
    return any(inner.id == name and id(inner) not in augmented for inner in stored)


def _global_writers(statements: Sequence[ast.stmt], tracked: set[str]) -> dict[str, Flow]:
    """Top-level functions that assign gradients through ``global``: calling one writes each of those from the
    names its body computes it from, through the function's own temporaries (and earlier such functions)."""
    writers: dict[str, Flow] = {}
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            declared = {name for node in ast.walk(statement) if isinstance(node, ast.Global) for name in node.names}
            if declared & tracked:
                body = _composed(_flow(_Names.of(line), writers) for line in statement.body)
                writers[statement.name] = {name: body.get(name, frozenset({name})) for name in declared & tracked}
    return writers


def _composed(flows: Iterable[Flow]) -> Flow:
    """What a block of statements writes -> the names from before the block that its final value is computed from."""
    composed: Flow = {}
    for flow in flows:
        composed |= {
            name: frozenset().union(*(composed.get(source, {source}) for source in sources))
            for name, sources in flow.items()
        }
    return composed


def _unpacked(target: ast.expr, value: ast.expr) -> list[tuple[ast.expr, ast.expr]]:
    """``a, (b, c) = x, (y, z)`` -> each target with the expression it is bound to; one pair when not unpacked."""
    if not (isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List))):
        return [(target, value)]
    elements = [*target.elts, *value.elts]
    if len(target.elts) != len(value.elts) or any(isinstance(node, ast.Starred) for node in elements):
        return [(target, value)]
    return [pair for parts in zip(target.elts, value.elts, strict=True) for pair in _unpacked(*parts)]


class _Names:
    """One walk over a statement: names written, read outside ``cmp(...)``, read inside it, and called."""

    def __init__(self) -> None:
        self.written: set[str] = set()
        self.read: set[str] = set()
        self.shown: set[str] = set()
        self.called: set[str] = set()
        self.sources: Flow = {}
        """Each name written -> the names (read or shown) its new value is computed from."""

    @classmethod
    def of(cls, node: ast.AST) -> _Names:
        names = cls()
        names.visit(node, in_cmp=False)
        names.sources = dict.fromkeys(names.written, frozenset(names.read | names.shown))
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.sources[node.target.id] |= {node.target.id}
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            names.sources |= _paired(node.targets[0], node.value)
        return names

    def visit(self, node: ast.AST, in_cmp: bool) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                (self.shown if in_cmp else self.read).add(node.id)
            else:
                self.written.add(node.id)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._definition(node)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.written.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            return
        if isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
            self.written.update(_base(node))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                self.called.add(node.func.id)
                in_cmp = in_cmp or node.func.id == CMP
            elif _is_inplace_method(node.func):
                self.written.update(_base(node.func))
        for child in ast.iter_child_nodes(node):
            self.visit(child, in_cmp)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        """A ``def`` binds its name and evaluates its decorators and defaults now; its body runs when called."""
        self.written.add(node.name)
        evaluated: list[ast.AST] = list(node.decorator_list)
        if isinstance(node, ast.ClassDef):
            evaluated += node.bases
        else:
            evaluated += [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        for child in evaluated:
            self.visit(child, in_cmp=False)


def _paired(target: ast.expr, value: ast.expr) -> Flow:
    """The sources of the names an unpacking assigns element by element (``dW2, db2 = dW2 / n, db2 / n``): each
    from its own element only. A name also written inside the value (``:=``) keeps every name as its source."""
    pairs = _unpacked(target, value)
    if len(pairs) == 1:
        return {}
    inside = _Names.of(value).written
    paired: dict[str, set[str]] = {}
    for part, element in pairs:
        targets, values = _Names.of(part), _Names.of(element)
        for name in targets.written - inside:
            paired.setdefault(name, set()).update(targets.read, targets.shown, values.read, values.shown)
    return {name: frozenset(sources) for name, sources in paired.items()}


def _is_inplace_method(func: ast.expr) -> bool:
    """``x.add_(...)``: torch's in-place methods end in one underscore."""
    return isinstance(func, ast.Attribute) and func.attr.endswith("_") and not func.attr.endswith("__")


def _base(node: ast.expr) -> set[str]:
    """The name at the root of ``a.b[c].d``."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()
