"""Finite-difference spot checks in float64: does the maths agree with manual, autograd, both or neither?

A few elements of chosen variables are nudged by ±h in a re-run of the forward (an
intermediate is nudged right after the line that binds it), and the central difference
of the loss is compared with the manual and the autograd gradient at that element.
Where the two one-sided differences disagree the loss has a kink there (relu at 0, a
tie in a max): the element is flagged, not judged. A variable that is a view of an
earlier tensor shares its storage, so the nudge reaches that tensor's later uses too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from .capture import Capture, Variable, _run_forward, convert_graph, convert_inputs
from .compare import compare_all
from .draw import Draw
from .graph import Graph
from .tolerance import Tolerance

OK = "ok"
KINK = "kink"
MANUAL = "manual"
BOTH = "both"
NEITHER = "neither"
UNSETTLED = "unsettled"
"""The central difference moved with its step (``h`` against ``2h``) beyond the tolerance: truncation (a curve
too sharp for ``h``, ``log`` near 0) or the rounding of large intermediates (timestamps of 1.7e9), not judged."""
NOT_RUN = "not run"
"""The variable cannot be nudged as checked (a name bound twice, a complex or empty tensor): nothing is judged."""
AUTOGRAD = "autograd"
"""The manual gradient agrees with finite differences and autograd does not (a wrong custom autograd.Function)."""
UNRELIABLE = frozenset({BOTH, NEITHER, AUTOGRAD})
"""Verdicts where autograd itself disagrees with finite differences: it is no reference for that variable."""

TOLERANCE = Tolerance(rtol=1e-4, atol=1e-7)
"""How close a gradient element must be to the central difference."""
NOISE_EPS = 8
"""The nudged losses' own rounding, in float64 epsilons of their size (a forward accumulates several roundings)."""
KINK_RATIO = 0.1
"""One-sided differences further apart than this fraction of the larger one mark a kink."""


@dataclass(frozen=True)
class Sample:
    """One nudged element: both gradients, the three differences and the verdict."""

    index: tuple[int, ...]
    manual: float | None
    autograd: float
    central: float
    forward: float
    backward: float
    verdict: str
    wider: float | None = None
    """The central difference at ``2h``, measured when the verdict would say autograd is wrong (:data:`UNSETTLED`)."""
    reason: str = ""
    """Why the variable was not nudged (:data:`NOT_RUN`)."""


def spot_check(
    graph: Graph,
    manual: Mapping[str, Any],
    variables: Iterable[str],
    *,
    samples: int = 3,
    h: float = 1e-5,
    seed: int = 0,
    reference: Capture | None = None,
    draw: Draw | None = None,
) -> dict[str, list[Sample]]:
    """Sample ``samples`` elements of each variable and judge manual (keyed by variable) and autograd there.

    ``draw`` is the check's one draw of inputs (every nudged run replays it); ``reference``
    a float64 CPU capture of that draw to reuse. Each is made when not given.
    """
    draw = draw or Draw.of(graph)
    reference = reference or draw.capture("cpu", torch.float64)
    generator = torch.Generator().manual_seed(seed)
    loss0 = reference.loss.item()
    found: dict[str, list[Sample]] = {}
    for name in variables:
        variable = reference.variables.get(name)
        if variable is None or variable.grad is None:
            continue
        refused = _unnudgeable(variable, reference)
        if not refused:
            indices = _indices(tuple(variable.value.shape), samples, generator)
            loss = partial(nudged_loss, draw, name)
            try:
                found[name] = [_sample(partial(loss, i), i, manual.get(name), variable, loss0, h) for i in indices]
                continue
            except Exception as error:  # noqa: BLE001 - one variable that cannot be nudged leaves the others judged
                refused = f"{type(error).__name__}: {error}"
        found[name] = [Sample((), None, math.nan, math.nan, math.nan, math.nan, NOT_RUN, reason=refused)]
    return found


def _unnudgeable(variable: Variable, captured: Capture) -> str:
    """Why ``variable`` cannot be spot-checked, or "": a name bound twice is nudged at its first binding while its
    gradient is of another tensor (a right backward's ``h = h.tanh()`` read as a wrong autograd, a failing row), and
    a view's nudge moves the tensor it views (:func:`_shared_later`)."""
    if variable.problem:
        return variable.problem
    if variable.value.numel() == 0:
        return f"{variable.name} has no elements"
    if variable.value.is_complex():
        return f"{variable.name} is complex, and the spot check nudges real values"
    if variable.value.layout != torch.strided:
        return f"{variable.name} is sparse, and the spot check nudges dense values"
    return _shared_later(variable, captured)


def _shared_later(variable: Variable, captured: Capture) -> str:
    """Why a nudge of ``variable`` would reach another path, or "": it shares its memory with an earlier variable (a
    view, ``hv = h.view(-1)``, ``hT = h.T``), and the in-place nudge moves that one too wherever it is used after
    (a later step, or the loss's own line, which is no variable and was missed: ``loss = hv.sum() + (h**2).sum()``),
    while autograd's gradient is through ``variable`` alone (a right backward failed, autograd 'refuted')."""
    storage = _storage(variable.value)
    for other in captured.variables.values():
        earlier = other.line < variable.line  # a nudge at the earlier binding reaches the view as it should
        if not earlier or other.name in variable.aliases or storage is None or _storage(other.value) != storage:
            continue
        return (
            f"{variable.name} shares its memory with {other.name} (a view): a nudge of one moves the other wherever it "
            f"is used after line {variable.line}"
        )
    return ""


def _storage(tensor: torch.Tensor) -> int | None:
    """Where ``tensor``'s memory starts, or None for a layout without one storage (a sparse weight: asking raised
    out of the whole spot check, its dense variables' too)."""
    return tensor.untyped_storage().data_ptr() if tensor.layout == torch.strided else None


def nudged_loss(source: Graph | Draw, name: str, index: tuple[int, ...], delta: float) -> float:
    """The float64 CPU loss with element ``index`` of variable ``name`` moved by ``delta``
    (on the draw's inputs and random state; a graph is drawn afresh)."""
    draw = source if isinstance(source, Draw) else Draw.of(source)
    cpu, memo = torch.device("cpu"), {}  # the forward's own module and tensors are cast as the inputs are
    graph = convert_graph(draw.graph, cpu, torch.float64, memo)
    inputs = {
        k: v.detach() if isinstance(v, torch.Tensor) else v
        for k, v in convert_inputs(draw.inputs, cpu, torch.float64, memo).items()
    }
    with torch.no_grad(), draw.replay():
        namespace = _run_forward(graph, inputs, _Nudge(name, index, delta))
    return float(namespace[draw.graph.loss])


def numerical_gradient(
    source: Graph | Draw, name: str, shape: tuple[int, ...], h: float = 1e-5
) -> tuple[torch.Tensor, float]:
    """The central-difference gradient of the loss for every element of ``name`` (2·numel forward runs), and the
    largest round-off it can carry (:func:`round_off`)."""
    slopes = numerical_slopes(source, name, shape, None, h)
    return slopes.central, slopes.noise


@dataclass(frozen=True)
class Slopes:
    """Central differences of every element, and at a kink the interval between its one-sided differences."""

    central: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    noise: float

    def at_kinks(self, manual: Any) -> torch.Tensor:
        """The central differences, but ``manual``'s own value where it lies between a kink's one-sided slopes:
        every value there is a subgradient, and a right backward takes one side's (a ReLU's 0 at 0), never the
        central difference's average of both."""
        if not isinstance(manual, torch.Tensor) or manual.shape != self.central.shape or manual.is_complex():
            return self.central
        value = manual.detach().to("cpu", torch.float64)
        inside = (value >= self.low) & (value <= self.high) & (self.low < self.high)
        return torch.where(inside, value, self.central)


def numerical_slopes(
    source: Graph | Draw, name: str, shape: tuple[int, ...], loss0: float | None, h: float = 1e-5
) -> Slopes:
    """:func:`numerical_gradient`'s differences, with the kinks among them (given the unnudged ``loss0``): where
    the one-sided differences stay apart from ``h`` to ``2h`` (:func:`_kink`), the interval between them."""
    draw = source if isinstance(source, Draw) else Draw.of(source)
    central = torch.zeros(shape, dtype=torch.float64)
    low, high = central.clone(), central.clone()
    noise = 0.0
    for flat in range(central.numel()):
        index = _unravel(flat, shape)
        loss = partial(nudged_loss, draw, name, index)
        plus, minus = loss(h), loss(-h)
        central[index] = low[index] = high[index] = (plus - minus) / (2 * h)
        noise = max(noise, round_off(plus, minus, h))
        if loss0 is None:
            continue
        forward, backward = (plus - loss0) / h, (loss0 - minus) / h
        if _apart(forward, backward) and _kink(loss, loss0, h, forward - backward):
            low[index], high[index] = min(forward, backward), max(forward, backward)
    return Slopes(central, low, high, noise)


def round_off(plus: float, minus: float, h: float) -> float:
    """What float64 rounding of the two nudged losses can put into their central difference: a loss of 1e9 carries
    1e-7 of it, 10^-2 once divided by 2h = 2e-5 (a right gradient of 1 failed a fixed atol of 1e-7)."""
    return NOISE_EPS * torch.finfo(torch.float64).eps * max(abs(plus), abs(minus)) / (2 * h)


def summarize(samples: list[Sample]) -> str:
    """One line for a row: how many samples agree, and the first one that does not."""
    if not samples:
        return ""
    if samples[0].verdict == NOT_RUN:
        return f"fd not run: {samples[0].reason}"
    judged = [s for s in samples if s.verdict not in (KINK, UNSETTLED)]
    kinks = [s for s in samples if s.verdict == KINK]
    unsettled = [s for s in samples if s.verdict == UNSETTLED]
    agree = sum(s.verdict in (OK, AUTOGRAD) for s in judged)
    parts = [f"fd {agree}/{len(judged)} ok"]
    if kinks:
        k = kinks[0]
        parts.append(f"kink at {k.index} (one-sided {k.forward:.4g} vs {k.backward:.4g}), not judged")
    if unsettled:
        u = unsettled[0]
        moved = "a step of h moves no value" if u.wider is None else f"step h {u.central:.6g} vs 2h {u.wider:.6g}"
        parts.append(f"unsettled at {u.index} ({moved}), not judged")
    wrong = next((s for s in judged if s.verdict != OK), None)  # autograd's own disagreement is said too
    if wrong is not None:
        parts.append(f"{_WHO[wrong.verdict]} at {wrong.index}: {_values(wrong)}")
    return "; ".join(parts)


_WHO = {
    MANUAL: "manual disagrees with finite differences (autograd agrees)",
    BOTH: "manual and autograd agree but both disagree with finite differences",
    NEITHER: "manual, autograd and finite differences all disagree",
    AUTOGRAD: "autograd disagrees with finite differences (manual agrees)",
}


def _values(s: Sample) -> str:
    manual = "none" if s.manual is None else f"{s.manual:.6g}"
    return f"manual {manual}, autograd {s.autograd:.6g}, fd {s.central:.6g}"


def _sample(
    loss: Callable[[float], float],
    index: tuple[int, ...],
    manual: Any,
    variable: Variable,
    loss0: float,
    h: float,
) -> Sample:
    """One element nudged by ``h`` each way; the differences divide by the steps its float64 value really took
    (at 1.7e9 a step of 1e-5 moves it by a multiple of 2.4e-7: 1% off, and autograd was called wrong)."""
    at = float(variable.value[index])
    up, down = (at + h) - at, at - (at - h)
    value, reference = _element(manual, index), variable.grad[index].item()
    if not up or not down:  # the step is below the value's resolution: nothing moves
        return Sample(index, value, reference, math.nan, math.nan, math.nan, UNSETTLED)
    plus, minus = loss(h), loss(-h)
    forward, backward, central = (plus - loss0) / up, (loss0 - minus) / down, (plus - minus) / (up + down)
    if _apart(forward, backward) and _kink(loss, loss0, h, forward - backward):
        return Sample(index, value, reference, central, forward, backward, KINK)
    noise = round_off(plus, minus, h)
    verdict = _verdict(value, reference, central, noise)
    if verdict not in UNRELIABLE:
        return Sample(index, value, reference, central, forward, backward, verdict)
    wide = ((at + 2 * h) - at) + (at - (at - 2 * h))
    wider = (loss(2 * h) - loss(-2 * h)) / wide  # autograd refuted only by a difference that stays put
    settled = abs(central - wider) <= TOLERANCE.atol + 2 * noise + TOLERANCE.rtol * abs(wider)
    return Sample(index, value, reference, central, forward, backward, verdict if settled else UNSETTLED, wider)


def _apart(forward: float, backward: float) -> bool:
    """The one-sided differences further apart than :data:`KINK_RATIO` of the larger (plus a little absolute)."""
    return abs(forward - backward) > KINK_RATIO * max(abs(forward), abs(backward)) + 10 * TOLERANCE.atol


def _kink(loss: Callable[[float], float], loss0: float, h: float, gap: float) -> bool:
    """One-sided differences apart by ``gap`` at step ``h`` come from a kink, not from curvature: a smooth loss's gap
    is ``h`` times its second derivative and doubles at ``2h``; a kink's stays the jump in slope. Where the
    gradient is zero and the loss curves (``a**2`` at a ReLU output of 0) the gap alone called it a kink."""
    wider = (loss(2 * h) - 2 * loss0 + loss(-2 * h)) / (2 * h)
    return abs(wider) < 1.5 * abs(gap)


def _verdict(manual: float | None, autograd: float, central: float, noise: float) -> str:
    fd = torch.tensor(central, dtype=torch.float64)
    noisy = Tolerance(TOLERANCE.rtol, TOLERANCE.atol + noise)
    pairs = [(torch.tensor(autograd, dtype=torch.float64), fd, noisy)]
    if manual is not None:
        pairs += [
            (torch.tensor(manual, dtype=torch.float64), fd, noisy),
            (torch.tensor(manual, dtype=torch.float64), pairs[0][0], TOLERANCE),
        ]
    results = [c.approximate for c in compare_all(pairs)]
    autograd_ok, manual_ok, same = results + [False] * (3 - len(results))
    if manual_ok:
        return OK if autograd_ok or manual is None else AUTOGRAD
    if autograd_ok:
        return MANUAL
    return BOTH if same else NEITHER


def _element(tensor: Any, index: tuple[int, ...]) -> float | None:
    if not isinstance(tensor, torch.Tensor) or tensor.numel() == 0:
        return None
    try:
        return tensor.detach()[index].double().item()
    except (IndexError, RuntimeError):
        return None


def _indices(shape: tuple[int, ...], samples: int, generator: torch.Generator) -> list[tuple[int, ...]]:
    numel = 1
    for size in shape:
        numel *= size
    flat = torch.randperm(numel, generator=generator)[: min(samples, numel)].tolist()
    return [_unravel(i, shape) for i in sorted(flat)]


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return tuple(reversed(index))


class _Nudge:
    """A capture observer that moves one element of ``name`` the first time the name is bound."""

    def __init__(self, name: str, index: tuple[int, ...], delta: float) -> None:
        self.name, self.index, self.delta = name, index, delta
        self.sources: dict[int, str] = {}
        self.done = False

    def observe(self, names: Mapping[str, Any], line: int, owned: bool = False) -> None:
        value = names.get(self.name)
        if not self.done and isinstance(value, torch.Tensor):
            value[self.index] += self.delta
            self.done = True
