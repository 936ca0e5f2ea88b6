"""Run a forward graph, capture its named tensors in forward order, and get autograd's gradients.

Nobody lists intermediates by hand: the forward runs with its code rewritten so that each
statement reports the names it binds (:mod:`.forward`, :mod:`.instrument`); nothing is
traced, so coverage tools and debuggers keep their tracer. Every name bound to a tensor
that requires grad is recorded with the line that bound it; a name bound twice, or a
tensor changed in place after it was captured, is kept as a *problem* rather than
checked against the wrong tensor.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .forward import GraphError, autograd_made, passes_through, rebuild
from .forward import run_forward as _run_forward
from .graph import Graph


@dataclass
class Variable:
    """One named tensor of the forward pass and autograd's gradient for it."""

    name: str
    value: torch.Tensor
    grad: torch.Tensor | None
    line: int
    source: str
    consumers: tuple[str, ...] = ()
    problem: str | None = None
    aliases: tuple[str, ...] = ()
    """Other variables that are the very same tensor (``w = p.w``): a gradient given under any of the names
    counts for each, as autograd's is one and the same."""
    parameter: bool = False
    """The name first held a parameter (a leaf that requires grad): a ``problem`` then hides its gradient."""


@dataclass
class Capture:
    """What a forward run leaves behind: the variables in backprop order and the final namespace."""

    graph: Graph
    variables: dict[str, Variable]
    namespace: dict[str, Any]
    loss: torch.Tensor
    device: torch.device
    dtype: torch.dtype
    unreached: dict[str, torch.Tensor] = field(default_factory=dict)
    """Leaf tensors that require grad but do not reach the loss: a gradient given for one must be zero."""
    unseen: list[torch.Tensor] = field(default_factory=list)
    """Leaf tensors that reach the loss from outside the inputs and named steps (a global, an object's
    attribute): their gradients cannot be checked."""
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    """What the judging works out from this capture once and reuses: the forward values it compares with a cell
    (:meth:`.scale._Forwards.kept`), the float32 run of its draw (:func:`.scale._float32_probe`)."""


def capture(
    graph: Graph,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    inputs: Mapping[str, Any] | None = None,
) -> Capture:
    """Run ``graph`` on ``device`` in ``dtype``, backpropagate its loss, and return every variable.

    ``inputs`` is a mapping already drawn by :func:`draw_inputs` (so several captures of one
    check share one draw); the forward runs on fresh converted copies of it. ``None`` draws once.
    """
    device = torch.device(device)
    drawn = draw_inputs(graph) if inputs is None else inputs
    with torch.inference_mode(False), torch.enable_grad(), collector_paused():
        memo: dict[int, Any] = {}  # one for the forward and the inputs: a weight both hold stays one parameter
        converted = convert_graph(graph, device, dtype, memo), convert_inputs(drawn, device, dtype, memo)
        return _capture(*converted, device, dtype)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (reference counting still frees everything acyclic).

    A capture makes a few container objects per named step; on a large graph their count
    sets off full collections, each of which walks every object of a process that has
    imported torch (70-90 ms measured). At 3,001 steps one happened in about every capture:
    paused, capture took 71 ms instead of 100 (median of 9, shared loaded 2-core machine).
    Judging the rows (``check.evaluate``) pauses it too: 243 ms instead of 271 for the whole check
    at 3,001 steps. The hand-written backward runs with it on: its garbage is its own.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def convert_graph(graph: Graph, device: torch.device, dtype: torch.dtype, memo: dict[int, Any] | None = None) -> Graph:
    """``graph`` with a forward that carries no tensor of the caller's: see :func:`_converted`. ``memo`` is shared
    with :func:`convert_inputs` when both convert one run's values."""
    if isinstance(graph.forward, str):
        return graph
    return replace(graph, forward=_converted(graph.forward, torch.device(device), dtype, {} if memo is None else memo))


def _converted(forward: Any, device: torch.device, dtype: torch.dtype, memo: dict[int, Any]) -> Any:
    """``forward`` with each tensor and module it carries replaced by a cast copy, as the inputs are: an
    ``nn.Module`` forward, a bound method's object (``model.forward``), a partial's arguments, a function's
    tensor defaults. Left the caller's, a parameter's ``.grad`` summed over checks (the second check of
    ``model.forward`` judged against twice the gradient) and a float64 cell met float32 weights."""
    if isinstance(forward, torch.nn.Module):
        return _convert(getattr(forward, "_orig_mod", forward), device, dtype, memo)
    if hasattr(forward, "_torchdynamo_orig_callable"):  # what runs is the function the forward unwraps to
        return _converted(forward._torchdynamo_orig_callable, device, dtype, memo)
    if isinstance(forward, types.FunctionType) and passes_through(forward):
        return _converted(forward.__wrapped__, device, dtype, memo)
    if isinstance(forward, functools.partial):
        arguments = _convert(forward.args, device, dtype, memo), _convert(forward.keywords, device, dtype, memo)
        return functools.partial(_converted(forward.func, device, dtype, memo), *arguments[0], **arguments[1])
    if isinstance(forward, types.MethodType):
        owner = _convert(forward.__self__, device, dtype, memo)
        return types.MethodType(_converted(forward.__func__, device, dtype, memo), owner)
    if isinstance(forward, types.FunctionType) and _carries_tensors((forward.__defaults__, forward.__kwdefaults__)):
        defaults = _convert((forward.__defaults__, forward.__kwdefaults__), device, dtype, memo)
        return _with_defaults(forward, *defaults)
    return forward


def _carries_tensors(value: Any) -> bool:
    """Whether ``value`` holds a tensor or a module anywhere (in lists, tuples, dicts and records)."""
    found: list[Any] = []
    rebuild(value, found.append, found.append)
    return bool(found)


def _with_defaults(
    function: types.FunctionType, defaults: tuple[Any, ...] | None, keyword_defaults: dict[str, Any] | None
) -> types.FunctionType:
    """A copy of ``function`` (same code, globals and closure) with other default values."""
    copied = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, defaults, function.__closure__
    )
    copied.__kwdefaults__ = keyword_defaults
    copied.__qualname__, copied.__module__ = function.__qualname__, function.__module__
    return copied


def _capture(graph: Graph, inputs: dict[str, Any], device: torch.device, dtype: torch.dtype) -> Capture:
    """Run the forward on converted inputs with grad enabled, and backpropagate."""
    recorder = _Recorder()
    namespace = _run_forward(graph, inputs, recorder)
    loss = namespace.get(graph.loss)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
        raise GraphError(
            f"graph {graph.name!r}: expected a scalar tensor that requires grad, named {graph.loss!r} "
            f"or returned by the forward, got {_describe(loss)}"
        )
    _refuse_own_backward(recorder, graph)
    for name, binding in recorder.bindings.items():
        if name.isidentifier() and namespace.get(name) is None:  # deleted (del h, h = None): still a step to read
            namespace[name] = binding.tensor
        binding.ends_as = _ends(binding, namespace.get(name, binding.tensor))
        if not binding.tensor.is_leaf:
            binding.tensor.retain_grad()
    loss.backward()
    variables = _variables(recorder, graph.loss, loss)
    unreached = {
        name: b.tensor.detach()
        for name, b in recorder.bindings.items()
        if b.tensor.is_leaf and b.tensor.grad is None and name != graph.loss
    }
    known = {id(t) for b in recorder.bindings.values() for t in (b.tensor, b.first)}
    unseen = [leaf for leaf in _leaves(loss) if id(leaf) not in known]
    return Capture(graph, variables, namespace, loss.detach(), device, dtype, unreached, unseen)


def _refuse_own_backward(recorder: _Recorder, graph: Graph) -> None:
    """A forward that runs the backward itself (the lecture's cell pasted with its ``loss.backward()``) leaves
    ``.grad`` on a parameter that starts without one: say so, rather than torch's advice to retain the graph."""
    given = [name for name, b in recorder.bindings.items() if b.gradless and b.first.grad is not None]
    if given:
        raise GraphError(
            f"graph {graph.name!r}: the forward already computed gradients ({given[0]}.grad is set when it returns): "
            f"remove its loss.backward() (any .backward() call); the check runs the backward itself"
        )


def autograd_nodes(loss: Any) -> Iterator[Any]:
    """Each node of the autograd graph ``loss`` was computed by, once (none for a tensor without one)."""
    seen: set[Any] = set()
    stack = [getattr(loss, "grad_fn", None)]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        yield node
        stack.extend(next_node for next_node, _ in node.next_functions)


def _leaves(loss: torch.Tensor) -> list[torch.Tensor]:
    """Every leaf tensor the loss was computed from, in the order autograd's graph reaches them."""
    return [node.variable for node in autograd_nodes(loss) if hasattr(node, "variable")]


def draw_inputs(graph: Graph) -> dict[str, Any]:
    """Call ``graph.inputs()`` once and check that it is a mapping of name -> value."""
    drawn = graph.inputs()
    if not isinstance(drawn, Mapping):
        raise GraphError(
            f"graph {graph.name!r}: inputs() must return a mapping of name -> value, got {type(drawn).__name__}"
        )
    keys = [key for key in drawn if not isinstance(key, str)]
    if keys:
        raise GraphError(f"graph {graph.name!r}: inputs() keys must be names (str), got {keys[0]!r}")
    return dict(drawn)


def convert_inputs(
    inputs: Mapping[str, Any], device: torch.device, dtype: torch.dtype, memo: dict[int, Any] | None = None
) -> dict[str, Any]:
    """Fresh copies of the inputs on ``device``, tensors inside lists, tuples and dicts (their subclasses,
    such as namedtuples and OrderedDicts, too) and records (SimpleNamespace, dataclasses) included.

    Floating tensors are cast to ``dtype``; leaves stay leaves with their ``requires_grad``,
    so a list cached by ``inputs()`` never accumulates ``.grad`` across checks. An
    ``nn.Module`` is deep-copied and cast the same way. A tensor that appears twice
    becomes one copy that appears twice, also where the forward carries it (``memo``, shared with
    :func:`convert_graph`).
    """
    memo = {} if memo is None else memo
    return {name: _convert(value, torch.device(device), dtype, memo) for name, value in inputs.items()}


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
"""The complex dtype of each precision a check runs in (half precisions have no usable complex one)."""


def _cast_dtype(current: torch.dtype, precision: torch.dtype) -> torch.dtype:
    """What a tensor of dtype ``current`` becomes in a check run in ``precision``: a floating one that
    dtype, a complex one the complex dtype of the same precision (a float64 check of a complex64 graph
    is a complex128 one: left complex64, its gradients had a dtype no float64 backward gives), any
    other (integers, bool) unchanged."""
    if current.is_floating_point:
        return precision
    if current.is_complex:
        return _COMPLEX.get(precision, current)
    return current


# A tensor a module keeps that autograd made (``self.out = x @ self.weight`` from an earlier run, a tied
# ``self.wT = self.weight.t()``) is copied as a leaf that requires grad, as the tensor did: one the forward
# overwrites is gone, one it reads reaches the loss from outside the named steps and is a failing ``graph``
# row (copied as a constant, the path to ``weight`` was cut and a backward forgetting it passed).
_MODULE_COPIES = -1
"""The key, in a conversion's memo (ids, never negative), of the one deepcopy memo its modules share: two modules
sharing a weight (``dec.weight = enc.weight``) keep sharing it, one parameter whose gradient sums both uses
(copied apart, each copy's gradient was one use's share, and a right total failed)."""


def _convert(value: Any, device: torch.device, dtype: torch.dtype, memo: dict[int, Any]) -> Any:
    def tensor(t: torch.Tensor) -> torch.Tensor:
        target = _cast_dtype(t.dtype, dtype)
        return t.detach().to(device=device, dtype=target, copy=True).requires_grad_(t.requires_grad)

    def module(m: torch.nn.Module) -> torch.nn.Module:
        copies = memo.setdefault(_MODULE_COPIES, {})
        copies.update({id(t): memo.setdefault(id(t), tensor(t)) for t in autograd_made(m)})
        converted = copy.deepcopy(m, copies)._apply(lambda t: t.to(device=device, dtype=_cast_dtype(t.dtype, dtype)))
        for parameter in converted.parameters():
            parameter.grad = None
        return converted

    return rebuild(value, tensor, module, memo)


@dataclass
class _Binding:
    tensor: torch.Tensor
    line: int
    version: int
    rebound_at: list[int] = field(default_factory=list)
    first: torch.Tensor | None = None
    """The tensor the name was bound to first (a parameter, when it was bound to an input and then rebound)."""
    first_line: int = 0
    gradless: bool = False
    """The first tensor was a leaf without ``.grad`` when bound (see :func:`_refuse_own_backward`)."""
    ends_as: str = ""
    """What the name holds when the forward ends, where that is other values than its tensor (see :func:`_ends`)."""


class _Recorder:
    """Remembers, in forward order, each name bound to a tensor that requires grad."""

    def __init__(self) -> None:
        self.bindings: dict[str, _Binding] = {}
        self.sources: dict[int, str] = {}
        self.owned: set[str] = set()

    def observe(self, names: Mapping[str, Any], line: int, owned: bool = False) -> None:
        """Record each name bound to a tensor that requires grad; a local named like one of the module's own
        parameters (``owned``) shadows it: the name stays the parameter's, whose gradient nothing else checks."""
        if owned:
            self.owned.update(names)
        for name, value in names.items():
            if not (isinstance(value, torch.Tensor) and value.requires_grad):
                continue
            binding = self.bindings.get(name)
            if binding is not None and name in self.owned and not owned:
                continue
            if binding is None:
                gradless = value.is_leaf and value.grad is None
                self.bindings[name] = _Binding(
                    value, line, value._version, first=value, first_line=line, gradless=gradless
                )
            elif binding.tensor is not value:
                binding.rebound_at.append(line)
                binding.tensor, binding.line, binding.version = value, line, value._version


def _variables(recorder: _Recorder, loss_name: str, loss: torch.Tensor) -> dict[str, Variable]:
    """The captured tensors that reach the loss, in backprop order, with their consumers. The loss itself is
    none, under any name (``total = y.sum(); return total``): its gradient is 1 by definition."""
    held = {id(b.tensor) for b in recorder.bindings.values()}
    bindings = {n: _reaching(b, held) for n, b in recorder.bindings.items() if n != loss_name and b.tensor is not loss}
    bindings = {n: b for n, b in bindings.items() if b.tensor.grad is not None}
    aliases = _aliases(bindings)
    order, consumers = backprop_graph({name: b.tensor for name, b in bindings.items()})
    return {
        name: Variable(
            name=name,
            value=bindings[name].tensor.detach(),
            grad=bindings[name].tensor.grad,
            line=bindings[name].line,
            source=recorder.sources.get(bindings[name].line, ""),
            consumers=tuple(consumers[name]),
            problem=_problem(name, bindings[name]),
            aliases=aliases[name],
            parameter=_lost_parameter(bindings[name], held),
        )
        for name in order
    }


def _reaching(binding: _Binding, held: set[int]) -> _Binding:
    """The binding itself, or, for a name rebound to something that does not reach the loss after holding a
    parameter that does (``w = w.norm()`` to log it after ``h = x @ w``), that parameter's first binding."""
    first = binding.first
    if binding.tensor.grad is None and _lost_parameter(binding, held) and first is not None and first.grad is not None:
        return _Binding(first, binding.first_line, first._version, first=first, first_line=binding.first_line)
    return binding


def _lost_parameter(binding: _Binding, held: set[int]) -> bool:
    """The name first held a parameter (a leaf) that no name holds now (``held``: the ids of the tensors the
    names are bound to): rebound, nothing else stands for that parameter."""
    first = binding.first
    return first is not None and first.is_leaf and id(first) not in held


def _aliases(bindings: Mapping[str, _Binding]) -> dict[str, tuple[str, ...]]:
    """For each name, the other names bound to the very same tensor (``w = p.w``, ``c2 = c``)."""
    names: dict[int, list[str]] = {}
    for name, binding in bindings.items():
        names.setdefault(id(binding.tensor), []).append(name)
    return {name: tuple(n for n in names[id(b.tensor)] if n != name) for name, b in bindings.items()}


def backprop_graph(tensors: Mapping[str, torch.Tensor]) -> tuple[list[str], dict[str, list[str]]]:
    """The names of ``tensors`` (given in forward order) in backprop order, and each one's consumers:
    the named tensors computed from it directly, read off autograd's graph. The in-notebook ``cmp``
    uses it for tensors the notebook holds, as capture does for the ones it records."""
    owner = _autograd_owners(tensors)
    inputs_of = {name: _named_inputs(tensor, owner) for name, tensor in tensors.items()}
    consumers: dict[str, list[str]] = {name: [] for name in tensors}
    for name, used in inputs_of.items():
        for producer in used:
            consumers[producer].append(name)
    return _backprop_order(list(tensors), inputs_of, consumers), consumers


def _autograd_owners(tensors: Mapping[str, torch.Tensor]) -> dict[Any, list[str]]:
    """Map each autograd output that is a named tensor (its node and output number; a leaf by identity) to its
    names: every output of a multi-output op (``a, b = h.chunk(2)``) and every alias (``a = h``) keeps its own,
    where one name per node gave the others' consumers to the last and blamed a right gradient as root cause."""
    owner: dict[Any, list[str]] = {}
    for name, tensor in tensors.items():
        key = ("leaf", id(tensor)) if tensor.grad_fn is None else (tensor.grad_fn, tensor.output_nr)
        owner.setdefault(key, []).append(name)
    return owner


def _named_inputs(tensor: torch.Tensor, owner: Mapping[Any, list[str]]) -> list[str]:
    """Names of the captured tensors that ``tensor`` was computed from directly, in operand order."""
    found: list[str] = []
    seen: set[Any] = set()
    stack = list(reversed(tensor.grad_fn.next_functions)) if tensor.grad_fn else []
    while stack:
        node, output = stack.pop()
        if node is None:
            continue
        names = owner.get(("leaf", id(node.variable)) if hasattr(node, "variable") else (node, output))
        if names:
            found += [name for name in names if name not in found]
            continue
        if node not in seen:
            seen.add(node)
            stack.extend(reversed(node.next_functions))
    return found


def _backprop_order(
    forward: list[str],
    inputs_of: Mapping[str, list[str]],
    consumers: Mapping[str, list[str]],
) -> list[str]:
    """Order variables as a hand-written backward visits them: by the forward line whose
    backward step completes their gradient (their earliest consumer), latest first."""
    position = {name: i for i, name in enumerate(forward)}

    def rank(name: str) -> tuple[int, int]:
        users = consumers[name]
        if not users:
            return (-len(position), 0)
        completing = min(users, key=position.__getitem__)
        return (-position[completing], inputs_of[completing].index(name))

    return sorted(forward, key=rank)


def _ends(binding: _Binding, final: Any) -> str:
    """What ``final``, the value the backward will be given under the binding's name, is when it is not the
    captured intermediate's values ("" when they agree: ``h = h.detach()`` keeps them): the name was rebound where
    no observation sees it (``nonlocal h`` in a nested function, ``h = h / h.max()`` under ``no_grad``), and
    checking the first tensor's gradient against a backward written for the other value is a false verdict."""
    tensor = binding.tensor
    if final is tensor or tensor.is_leaf:
        return ""
    if not isinstance(final, torch.Tensor):
        return type(final).__name__
    if (final.shape, final.dtype, final.device) == (tensor.shape, tensor.dtype, tensor.device):
        with torch.no_grad():
            if torch.equal(final, tensor):
                return ""
    return f"a tensor of shape {tuple(final.shape)}"


def _problem(name: str, binding: _Binding) -> str | None:
    if binding.rebound_at:
        lines = ", ".join(str(line) for line in binding.rebound_at)
        return (
            f"{name} is bound to more than one tensor (again at line {lines}); "
            f"give each step its own name so each gradient can be checked"
        )
    if binding.ends_as:
        return (
            f"{name} holds other values when the forward ends ({binding.ends_as}) than the tensor bound at line "
            f"{binding.line}: it was rebound where capture does not see it (a nested function's nonlocal, or a value "
            f"that needs no grad); give each step its own name so each gradient can be checked"
        )
    if not binding.tensor.is_leaf and binding.tensor._version != binding.version:
        return (
            f"{name} was modified in place after line {binding.line} "
            f"(version {binding.version} -> {binding.tensor._version}); its gradient cannot be checked"
        )
    return None


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} (requires_grad={value.requires_grad})"
    return "nothing" if value is None else type(value).__name__
