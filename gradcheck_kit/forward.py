"""Run a graph's forward once, reporting every name it binds to an observer, without tracing it.

The forward's code is rewritten (see :mod:`.instrument`) so that each statement that binds
names calls ``observer.observe({name: value}, line)`` right after it: one call per binding
statement, whatever the number of locals. Function forwards are unwrapped first
(``functools.partial``, bound methods, ``nn.Module`` and other callable objects,
``torch.compile``, torch's own decorators such as ``@torch.enable_grad()``) to the ``def`` whose steps are the
user's; any other decorator is refused, as its wrapper would hide them or, skipped, lose its work; a lambda
has no statements and runs as is, its parameters being its only named tensors. The loss is the name ``graph.loss`` or,
when the forward binds no such name, the value it returns.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from . import instrument
from .graph import Graph

_SUBSCRIPTS = re.compile(r"(\w+)((?:\[(?:\d+|'[^']*')\])+)(?:\.(.+))?")
_KEY = re.compile(r"\[(\d+|'[^']*')\]")


class GraphError(Exception):
    """The forward graph itself cannot be run or differentiated: nothing can be checked."""


class Observer(Protocol):
    """Told each binding of the forward as it happens, with the source lines of the forward."""

    sources: dict[int, str]

    def observe(self, names: Mapping[str, Any], line: int, owned: bool = False) -> None:
        """``owned``: the forward's module's own parameters, named by their path (``weight``), which a local of the
        same name (``weight = self.weight.t()``) shadows rather than rebinds: ``self.weight`` still holds them."""


def run_forward(graph: Graph, inputs: dict[str, Any], observer: Observer) -> dict[str, Any]:
    """Run ``graph``'s forward on ``inputs``; return its final namespace, the loss under ``graph.loss``."""
    if isinstance(graph.forward, str):
        return _run_code(graph.forward, inputs, observer, f"<graph {graph.name}>")
    return _run_function(graph, inputs, observer)


def _run_code(source: str, inputs: dict[str, Any], observer: Observer, filename: str) -> dict[str, Any]:
    """Execute module-level forward code, rewritten to report its bindings."""
    code = instrument.module_code(source, filename)
    observer.sources.update(_code_lines(source))
    namespace: dict[str, Any] = {"torch": torch, **inputs}
    observer.observe({**namespace, **held(namespace)}, 0)
    namespace[instrument.OBSERVE] = observer.observe
    try:
        exec(code, namespace)
    except Exception as error:
        raise _failed(error, code, observer.sources) from error
    finally:
        namespace.pop(instrument.OBSERVE, None)
        namespace.pop("__builtins__", None)
    return namespace


@functools.lru_cache(maxsize=64)
def _code_lines(source: str) -> dict[int, str]:
    return {number: line.strip() for number, line in enumerate(source.splitlines(), start=1)}


def _run_function(graph: Graph, inputs: dict[str, Any], observer: Observer) -> dict[str, Any]:
    """Call the forward with the inputs it names, its def rewritten to report its bindings."""
    function, leading, fixed = _unwrap(graph.forward)
    signature = inspect.signature(functools.partial(function, *leading, **fixed), follow_wrapped=False)
    arguments = _arguments(signature, function, inputs)
    code = function.__code__ if isinstance(function, types.FunctionType) else None
    if code is not None:
        observer.sources.update(_source_lines(code))
    parameters = _parameters(signature, arguments)
    owner = {"": leading[0]} if leading and isinstance(leading[0], torch.nn.Module) else {}
    given = {**_positional(function, leading), **parameters, **held(parameters)}
    observer.observe(held(owner), code.co_firstlineno if code else 0, owned=True)
    observer.observe(given, code.co_firstlineno if code else 0)
    final: dict[str, Any] = {}
    result = _call(function, leading, {**fixed, **arguments}, observer, final)
    namespace = {**inputs, **{k: v for k, v in final.items() if not k.startswith("__gradcheck_")}}
    if graph.loss not in final:
        namespace[graph.loss] = result
    return namespace


def _positional(function: Callable[..., Any], leading: tuple[Any, ...]) -> dict[str, Any]:
    """The parameters ``leading`` fills by position (``functools.partial(forward, W)``: ``w``), by name: they are
    the forward's steps as much as those given by keyword (unobserved, ``w``'s gradient went unchecked)."""
    if not leading:
        return {}
    try:
        return dict(inspect.signature(function, follow_wrapped=False).bind_partial(*leading).arguments)
    except (TypeError, ValueError):  # a callable without a signature, or more arguments than it takes
        return {}


def _call(
    function: Callable[..., Any],
    leading: tuple[Any, ...],
    keywords: dict[str, Any],
    observer: Observer,
    final: dict[str, Any],
) -> Any:
    """Run ``function`` rewritten (a lambda or a non-Python callable as it is); ``final`` gets its locals."""
    if not isinstance(function, types.FunctionType) or function.__name__ == "<lambda>":
        try:
            return function(*leading, **keywords)
        except Exception as error:
            raise _failed(error, getattr(function, "__code__", None), observer.sources) from error
    rewritten = _rewritten(function)
    hooks = {instrument.OBSERVE: observer.observe, instrument.FINISH: final.update, instrument.LOCALS: locals}
    try:
        return rewritten(*leading, **keywords, **hooks)
    except Exception as error:
        raise _failed(error, rewritten.__code__, observer.sources) from error


def is_record(value: Any) -> bool:
    """A plain holder of named values whose tensors count as inputs: a SimpleNamespace or a dataclass instance."""
    return isinstance(value, types.SimpleNamespace) or dataclasses.is_dataclass(value) and not isinstance(value, type)


def rebuild(
    value: Any,
    on_tensor: Callable[[torch.Tensor], Any],
    on_module: Callable[[torch.nn.Module], Any],
    memo: dict[int, Any] | None = None,
) -> Any:
    """``value`` rebuilt with every tensor and module it holds (in lists, tuples, dicts, records, and
    their subclasses) replaced by ``on_tensor``/``on_module``; other values as they are. A value met
    twice is rebuilt once, so what was shared stays shared. The one walk behind each check's input
    copies, the backward's copies and the gold's rounded inputs."""
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, torch.Tensor):
        rebuilt: Any = on_tensor(value)
    elif isinstance(value, torch.nn.Module):
        rebuilt = on_module(value)
    elif isinstance(value, (list, tuple)):
        items = [rebuild(item, on_tensor, on_module, memo) for item in value]
        rebuilt = type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    elif isinstance(value, dict):
        rebuilt = copy.copy(value)  # keeps a dict subclass and what it holds besides items
        rebuilt.update((key, rebuild(item, on_tensor, on_module, memo)) for key, item in value.items())
    elif is_record(value):
        rebuilt = copy.copy(value)
        vars(rebuilt).update((key, rebuild(item, on_tensor, on_module, memo)) for key, item in vars(value).items())
    else:
        return value
    memo[id(value)] = rebuilt
    return rebuilt


_ATOMIC = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, str, bytes)
"""What deepcopy keeps as it is, so what holds no tensor it copies."""


def autograd_made(value: Any, seen: set[int] | None = None) -> Iterator[torch.Tensor]:
    """The non-leaf tensors that ``value`` holds, where deepcopy looks for them: in attributes,
    lists, tuples, sets and dicts (so in submodules too). ``copy.deepcopy`` refuses them (a module keeping its
    activation, ``self.out = x @ self.weight``): the copies of the forward and of the backward give them in its memo."""
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, _ATOMIC):
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        if not value.is_leaf:
            yield value
        return
    if isinstance(value, dict):
        items: Iterable[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        items = getattr(value, "__dict__", {}).values()
    for item in items:
        yield from autograd_made(item, seen)


def held(values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Tensors that require grad held inside ``values``: ``ps[0]``, ``params['w']`` in lists, tuples
    and dicts; ``p.w`` in a record (:func:`is_record`); ``model.layer.weight`` for a module's
    parameters (``layer.weight`` for the module under the name ``""``, the forward's own ``self``)."""
    found: dict[str, torch.Tensor] = {}
    for name, value in values.items():
        if isinstance(value, torch.nn.Module):
            prefix = f"{name}." if name else ""
            found.update({prefix + q: p for q, p in value.named_parameters() if p.requires_grad})
        elif is_record(value):
            found.update(_elements({f"{name}.{key}": item for key, item in vars(value).items()}))
        elif isinstance(value, (list, tuple, dict)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            found.update(_elements({f"{name}[{key!r}]": item for key, item in items}))
    return found


def held_gradient(values: Mapping[str, Any], name: str, rule: str = "d{name}") -> Any:
    """The backward's gradient for variable ``name``: ``values[rule(name)]`` when given, else, for a
    tensor held in a container, the same path into the gradient container: ``dps[0]`` for
    ``ps[0]``, ``dparams['w']`` for ``params['w']``, ``dp.w`` or ``dp['w']`` for ``p.w``,
    ``dmodel['layer.weight']`` for ``model.layer.weight``. None when there is none."""
    if rule.format(name=name) in values:
        return values[rule.format(name=name)]
    base, keys = _path(name)
    found = values.get(rule.format(name=base))
    for key in keys:
        try:
            found = found[key] if not is_record(found) else getattr(found, key)
        except (KeyError, IndexError, TypeError, AttributeError):
            return None
    return found if keys else None


def container_gap(values: Mapping[str, Any], name: str, rule: str = "d{name}") -> str:
    """Where the container the backward gave for ``name``'s holder lacks it (``dmodel has no '2.bias'; it holds
    '0.bias', '0.weight', '2.weight'``), or "" when it gave none or the path is there."""
    base, keys = _path(name)
    found, path = values.get(rule.format(name=base)), rule.format(name=base)
    if not keys or found is None:
        return ""
    for key in keys:
        try:
            found = found[key] if not is_record(found) else getattr(found, key)
        except (KeyError, IndexError, TypeError, AttributeError):
            return f"{path} has no {key!r}; it holds {_contents(found)}"
        path += f"[{key!r}]"
    return ""


def _contents(holder: Any) -> str:
    """What a gradient container holds, for a message: its keys, attributes or length."""
    if isinstance(holder, Mapping):
        return ", ".join(repr(key) for key in sorted(holder, key=str)) or "nothing"
    if is_record(holder):
        return ", ".join(repr(key) for key in sorted(vars(holder))) or "nothing"
    if isinstance(holder, (list, tuple)):
        return f"{len(holder)} items"
    return f"a {type(holder).__name__}"


def _path(name: str) -> tuple[str, list[Any]]:
    """``"ps[0]['b']"`` -> ``("ps", [0, "b"])``; ``"model.layer.weight"`` -> ``("model", ["layer.weight"])``;
    ``"layers[0].weight"`` (a module in a list) -> ``("layers", [0, "weight"])``."""
    if "[" in name:
        match = _SUBSCRIPTS.fullmatch(name)
        if match is None:
            return name, []
        keys = [ast.literal_eval(key) for key in _KEY.findall(match[2])]
        return match[1], keys + ([match[3]] if match[3] else [])
    base, _, rest = name.partition(".")
    return base, [rest] if rest else []


def _elements(values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Inside a container, a tensor that requires grad counts itself; other values are searched as by :func:`held`."""
    found: dict[str, torch.Tensor] = {}
    for name, value in values.items():
        if isinstance(value, torch.Tensor):
            found.update({name: value} if value.requires_grad else {})
        else:
            found.update(held({name: value}))
    return found


def _unwrap(forward: Any) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The function that runs when ``forward`` is called, with the positional and keyword arguments bound to it."""
    leading: tuple[Any, ...] = ()
    fixed: dict[str, Any] = {}
    seen: set[int] = set()
    while id(forward) not in seen:
        seen.add(id(forward))
        if hasattr(forward, "_torchdynamo_orig_callable"):
            forward = forward._torchdynamo_orig_callable
        elif isinstance(forward, types.FunctionType) and passes_through(forward):
            forward = forward.__wrapped__
        elif isinstance(forward, types.FunctionType):
            _refuse_wrapper(forward)
            break
        elif isinstance(forward, torch.nn.Module) and hasattr(forward, "_orig_mod"):
            forward = forward._orig_mod
        elif isinstance(forward, functools.partial):
            leading, fixed = (*forward.args, *leading), {**forward.keywords, **fixed}
            forward = forward.func
        elif isinstance(forward, types.MethodType):
            leading = (forward.__self__, *leading)
            forward = forward.__func__
        elif isinstance(forward, torch.nn.Module):
            forward = forward.forward
        elif isinstance(getattr(forward, "__call__", None), types.MethodType):  # noqa: B004 - a callable object
            forward = forward.__call__
        else:
            break
    return forward, leading, fixed


_TORCH = Path(torch.__file__).resolve().parent


def passes_through(function: types.FunctionType) -> bool:
    """``function`` is the wrapper of one of torch's own decorators (``@torch.enable_grad()``, ``@torch.no_grad()``),
    which only sets a grad mode (capture sets its own): the function it wraps is what runs, its steps captured."""
    wrapped = getattr(function, "__wrapped__", None)
    return callable(wrapped) and wrapped is not function and Path(function.__code__.co_filename).is_relative_to(_TORCH)


def _refuse_wrapper(function: types.FunctionType) -> None:
    """Any other decorator's wrapper (``functools.wraps``) may change the arguments or the result (a loss scaled by
    3): run as it is, it hides the steps; skipped, its work is lost and a backward without it passed. Say so."""
    wrapped = getattr(function, "__wrapped__", None)
    if callable(wrapped) and wrapped is not function:
        name = getattr(wrapped, "__name__", "the forward")
        raise GraphError(
            f"{name}() is decorated: its wrapper {function.__code__.co_name}() "
            f"(in {Path(function.__code__.co_filename).name}) runs in its place and capture cannot see "
            f"{name}()'s steps through it; pass the undecorated function ({name}.__wrapped__) and do what the "
            f"decorator does in the forward itself"
        )


def _arguments(signature: inspect.Signature, function: Callable[..., Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs the forward takes by name (all of them when it has ``**kwargs``); a missing one is an error."""
    parameters = signature.parameters
    missing = [
        name
        for name, p in parameters.items()
        if name not in inputs and p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if missing:
        name = getattr(function, "__name__", type(function).__name__)
        raise GraphError(f"forward {name}() needs {missing}, which inputs() does not provide")
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return dict(inputs)
    return {k: v for k, v in inputs.items() if k in parameters}


def _parameters(signature: inspect.Signature, arguments: dict[str, Any]) -> dict[str, Any]:
    """The forward's parameters as it starts: the arguments given, then the defaults, in signature order;
    a ``**kwargs`` dict's entries under their own names (they are the inputs, ``w`` not ``kw['w']``)."""
    bound = signature.bind_partial(**arguments)
    bound.apply_defaults()
    parameters: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            parameters.update(value)
        else:
            parameters[name] = value
    return parameters


def _rewritten(function: types.FunctionType) -> types.FunctionType:
    try:
        return instrument.function(function)
    except (instrument.InstrumentError, SyntaxError, ValueError) as error:
        raise GraphError(f"cannot capture the forward: {error}") from None


@functools.lru_cache(maxsize=64)
def _source_lines(code: types.CodeType) -> dict[int, str]:
    """Line number -> stripped source line of a function's code (read once per function)."""
    try:
        lines, start = inspect.getsourcelines(code)
    except (OSError, TypeError):
        return {}
    return {start + i: line.strip() for i, line in enumerate(lines)}


def _failed(error: Exception, code: types.CodeType | None, sources: Mapping[int, str]) -> GraphError:
    """A GraphError naming the forward's file, line and source line where ``error`` was raised."""
    line = None
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code is code:
            line = frame.tb_lineno
        frame = frame.tb_next
    if code is None or line is None:
        return GraphError(f"the forward raised {type(error).__name__}: {error}")
    return GraphError(
        f"{Path(code.co_filename).name}, line {line}: {sources.get(line, '')}: {type(error).__name__}: {error}"
    )
