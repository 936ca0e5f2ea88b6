"""Forward graphs, check cases and the registry that the CLI and pytest plugin read."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from .tolerance import Tolerance

Inputs = Callable[[], Mapping[str, Any]]
"""Returns fresh forward inputs; tensors with ``requires_grad=True`` are the parameters."""


@dataclass(frozen=True)
class Graph:
    """A forward pass written one named line per step, and the inputs it runs on.

    ``forward`` is a function whose parameters are looked up by name in ``inputs()``
    (also a lambda, a ``functools.partial``, a ``torch.compile``-d function or an
    ``nn.Module``), or a string of module-level code run in a namespace holding the inputs.
    Every tensor bound to a name that reaches ``loss`` becomes a checked variable, and so
    does every parameter held in a list, tuple, dict or module of the inputs (``ps[0]``,
    ``params['w']``, ``model.layer.weight``; a module forward's own as ``layer.weight``).
    The loss is the tensor named ``loss``, or the forward's return value when none is.
    """

    name: str
    forward: Callable[..., Any] | str
    inputs: Inputs
    loss: str = "loss"

    def __post_init__(self) -> None:
        if not (callable(self.forward) or isinstance(self.forward, str)):
            raise TypeError(
                f"Graph {self.name!r}: forward must be a function or a code string, got {type(self.forward).__name__}"
            )
        if not callable(self.inputs):
            raise TypeError(
                f"Graph {self.name!r}: inputs must be a function returning a mapping, got {type(self.inputs).__name__}"
            )


def graph(*, inputs: Inputs, name: str | None = None, loss: str = "loss") -> Callable[[Callable[..., Any]], Graph]:
    """Decorator form of :class:`Graph`: ``@graph(inputs=make_inputs)`` over a forward function."""

    def wrap(forward: Callable[..., Any]) -> Graph:
        return Graph(name or forward.__name__, forward, inputs, loss)

    return wrap


@dataclass(frozen=True)
class Case:
    """One registered check: a graph, the hand-written gradients, and how to judge them.

    ``manual`` is a function, a code string, a path to a ``.py`` file, or a
    :class:`~gradcheck_kit.manual.NotebookCell`. ``tolerance`` is a :class:`Tolerance`,
    a preset name (``"default"``, ``"makemore"``) or ``None`` for the dtype-aware default;
    ``overrides`` sets a tolerance per variable; ``variables`` limits the check to
    those names (an exercise that asks for one gradient), in backprop order regardless.
    """

    name: str
    graph: Graph
    manual: Any
    tolerance: Tolerance | str | None = None
    overrides: Mapping[str, Tolerance] = field(default_factory=dict)
    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    name_rule: str = "d{name}"
    variables: tuple[str, ...] | None = None
    source: str = ""
    rule: Any = None
    line: int = 0
    declared: frozenset[str] = frozenset()
    timeout: float | None = None


_REGISTRY: dict[str, Case] = {}


def register(
    name: str,
    graph: Graph,
    manual: Any,
    *,
    tolerance: Tolerance | str | None = None,
    overrides: Mapping[str, Tolerance] | None = None,
    devices: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    name_rule: str = "d{name}",
    variables: Iterable[str] | None = None,
    rule: Any = None,
    timeout: float | None = None,
) -> Case:
    """Register a case under ``name`` so ``gradcheck-kit check`` and ``pytest --gradcheck`` find it.

    ``rule`` is ``"reference"`` or a :class:`~gradcheck_kit.reference.Rule` for the
    reference-relative rule. ``declared`` records which of devices, dtypes, tolerance and rule
    were given here, so the pytest plugin lets them win over its ini defaults.
    Registering the same name again from the same file replaces the case (a module
    imported twice); from another file it is an error, since reports key rows by name.
    """
    devices, dtypes, variables = (
        v if v is None or isinstance(v, str) else tuple(v) for v in (devices, dtypes, variables)
    )
    try:
        _validate_case(name, graph, manual)
        validate_arguments(tolerance, devices, dtypes, name_rule, variables, rule, timeout)
        if any(not isinstance(value, Tolerance) for value in (overrides or {}).values()):
            raise ValueError(f"overrides expected a Tolerance per variable, got {dict(overrides)!r}")
    except ValueError as error:
        raise ValueError(f"register({name!r}): {error}") from None
    source = _caller_file()
    manual = _beside(manual, Path(source).parent)
    existing = _REGISTRY.get(name)
    if existing is not None and existing.source != source:
        raise ValueError(f"case {name!r} is already registered by {existing.source}; got a second one from {source}")
    case = Case(
        name,
        graph,
        manual,
        tolerance,
        dict(overrides or {}),
        tuple(dict.fromkeys(devices or ("cpu",))),
        tuple(dict.fromkeys(str(dtype).removeprefix("torch.") for dtype in dtypes or ("float32",))),
        name_rule,
        None if variables is None else tuple(variables),
        source,
        rule=rule,
        timeout=timeout,
        line=sys._getframe(1).f_lineno,
        declared=frozenset(
            key
            for key, value in {"devices": devices, "dtypes": dtypes, "tolerance": tolerance, "rule": rule}.items()
            if value is not None
        ),
    )
    _REGISTRY[name] = case
    return case


def _validate_case(name: Any, graph: Any, manual: Any) -> None:
    """A case needs a name, a :class:`Graph` and a backward of a kind that can be run."""
    from .manual import NotebookCell

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name expected a non-empty string, got {name!r}")
    if not isinstance(graph, Graph):
        raise ValueError(f"graph expected a Graph, got {type(graph).__name__}")
    if not (callable(manual) or isinstance(manual, (str, Path, NotebookCell))):
        raise ValueError(f"manual expected a function, code string, Path or NotebookCell, got {type(manual).__name__}")


def refuse_bare_strings(**arguments: Any) -> None:
    """A bare string where names are expected would be read letter by letter (``fd="gamma"`` checked 'g', 'a' and
    'm'; ``dtypes="float64"`` was 'unknown dtype f'): a ValueError naming the argument and the tuple meant."""
    for argument, given in arguments.items():
        if isinstance(given, str):
            raise ValueError(f"{argument} expected a tuple of names, e.g. ({given!r},), got {given!r}")


def validate_arguments(
    tolerance: Any,
    devices: Iterable[str] | None,
    dtypes: Iterable[str] | None,
    name_rule: str,
    variables: Iterable[str] | None,
    rule: Any,
    timeout: float | None,
) -> None:
    """Refuse a mistyped argument of ``register()`` or ``check()`` before anything runs (a ValueError naming the
    argument, what was expected and what was got), not as a silent nothing or a traceback at check time."""
    from .devices import parse_device, parse_dtype
    from .manual import gradient_pattern, timeout_refused
    from .reference import Rule
    from .tolerance import resolve

    def refuse(argument: str, expected: str, got: Any) -> None:
        raise ValueError(f"{argument} expected {expected}, got {got!r}")

    refuse_bare_strings(devices=devices, dtypes=dtypes, variables=variables)
    for kind, given in (("devices", devices), ("dtypes", dtypes)):
        if given is not None and not given:
            refuse(kind, "at least one name", given)
    if isinstance(variables, Sized) and not len(variables):
        refuse("variables", "at least one name (None checks every variable)", variables)
    for device in devices or ():
        parse_device(device)
    for dtype in dtypes or ():
        parse_dtype(dtype)
    if isinstance(tolerance, str):
        resolve(tolerance, torch.float32)
    elif tolerance is not None and not isinstance(tolerance, Tolerance):
        refuse("tolerance", "a Tolerance, a preset name or None", tolerance)
    gradient_pattern(name_rule)
    if rule is not None and rule not in ("reference", "tolerance") and not isinstance(rule, Rule):
        refuse("rule", "'reference', 'tolerance' or a Rule", rule)
    if timeout is not None and timeout_refused(timeout):
        raise ValueError(f"timeout {timeout_refused(timeout)}")


def registered() -> list[Case]:
    """Every registered case, in registration order."""
    return list(_REGISTRY.values())


def load_cases(path: str | Path) -> list[Case]:
    """Import a file, or every ``gradcheck_*.py`` file under a folder, and return the cases it registered.

    The file's folder is put on ``sys.path`` while it loads, so a case file can import
    its siblings (``from model import forward``) as in a plain script.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("gradcheck_*.py"))
    elif path.is_file() and path.suffix == ".py":
        files = [path]
    else:
        raise FileNotFoundError(f"expected a .py file or a folder of gradcheck_*.py files, got {str(path)!r}")
    cases: list[Case] = []
    for file in files:
        cases.extend(_load_file(file.resolve()))
    return cases


def _load_file(file: Path) -> list[Case]:
    before = {name for name, case in _REGISTRY.items() if case.source != str(file)}
    import_file(file, "_gradcheck_cases")
    return [case for name, case in _REGISTRY.items() if name not in before and case.source == str(file)]


def import_file(path: Path, prefix: str) -> ModuleType:
    """Import the Python file ``path`` as a private module, with its folder on ``sys.path`` while it
    runs so that it can import its siblings as a script would (``from model import forward``)."""
    spec = importlib.util.spec_from_file_location(f"{prefix}_{path.stem}_{zlib.crc32(str(path).encode()):x}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _beside(manual: Any, folder: Path) -> Any:
    """``manual`` with a relative backward file (a ``Path``, a one-line ``'backward.py'``, a notebook cell's
    path) that lies in ``folder``, the case file's own, taken from there: a case file is imported from wherever
    the command runs, and ``gradcheck-kit check examples/x`` from the project root failed every such case with
    ``FileNotFoundError: 'backward.py'``. A path not found there is left as it is (relative to the working folder)."""
    if dataclasses.is_dataclass(manual) and isinstance(getattr(manual, "path", None), (str, Path)):
        found = _found_in(folder, manual.path)
        return manual if found is None else dataclasses.replace(manual, path=found)
    is_path = isinstance(manual, Path) or (
        isinstance(manual, str)
        and "\n" not in manual
        and manual.strip().endswith((".py", ".ipynb"))
        and not any(mark in manual for mark in "=#(")
    )
    found = _found_in(folder, manual) if is_path else None
    return manual if found is None else type(manual)(found)


def _found_in(folder: Path, path: str | Path) -> Path | None:
    """``folder / path`` when ``path`` is relative and that file exists, else None."""
    candidate = Path(str(path).strip())
    if candidate.is_absolute() or not (folder / candidate).is_file():
        return None
    return folder / candidate


def _caller_file() -> str:
    """The file of the code that called :func:`register` (outside this module)."""
    return str(Path(sys._getframe(2).f_code.co_filename).resolve())
