"""The reference-relative rule: judge a low-precision gradient by how far autograd itself strays.

A gradient passes when ``max|manual - gold| <= k * max|autograd - gold| + floor``, where
*gold* is autograd in float64 on CPU run on the same inputs (rounded to the checked
dtype first, so input rounding is not counted against anyone) and *autograd* is the
reference in the checked dtype and device. This is the rule FlashAttention's tests use:
fixed rtol/atol are flaky or toothless in float16/bfloat16, a multiple of autograd's own
error is neither. Both errors go through the one comparison path (:mod:`.compare`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from .capture import Capture
from .compare import MISMATCH, NONFINITE, OK, Comparison, as_real, compare_all, dense
from .draw import Draw
from .forward import rebuild
from .graph import Graph
from .tolerance import Tolerance, resolve

GOLD_DEVICE = "cpu"
GOLD_DTYPE = torch.float64
FLOOR_EPS = 64
"""The gold's own rounding, in float64 epsilons times the largest gold gradient (part of the default floor)."""

FORGIVEN = 4
"""A row that fails the rule by at most this factor of its bound passes when the same backward in float64 matches
the gold (:func:`_forgiven`): a right backward with bfloat16 intermediates strayed 2.2x past it in 2 of 240 drawn
graphs. Beyond it, a right formula rounds so much worse than autograd that the cell's values are not usable."""
KEPT_SHARE = 0.1
"""A row the rule passes in half precision fails where the same backward in float64 still misses the gold by this
share of the cell dtype's resolution or more: round-off shrinks by orders of magnitude from the cell's dtype to
float64, a mistake in the formula does not (:func:`_confirmed`)."""
LOCAL_MEDIANS = 3
"""autograd's error where an element lies is at least this many times the median along its row or column:
round-off differs from element to element, and where autograd happens to be exact a correct manual gradient
is not (3 medians of a normal spread is 2 standard deviations)."""

_MEASURED = frozenset({OK, MISMATCH, NONFINITE})
_HALF = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Rule:
    """The reference-relative rule's parameters: ``k`` and an absolute ``floor`` (``None``: the default)."""

    k: float = 2.0
    floor: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("k", self.k), ("floor", 0.0 if self.floor is None else self.floor)):
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"Rule {name} must be a finite number >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Judged:
    """One variable under the rule: the deciding comparison (against gold) and both errors."""

    comparison: Comparison
    gold_err: float
    autograd_err: float
    floor: float


def rounded(inputs: Mapping[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """``inputs`` with floating tensors (in containers too) rounded to ``dtype``: the gold sees what the cell saw.
    One tensor given under two names stays one tensor (its gradient is the sum over both uses, in the cell as
    in the gold; rounded apart, the gold held each name's share and passed a manual gradient missing the other)."""
    memo: dict[int, Any] = {}
    return {name: _round(value, dtype, memo) for name, value in inputs.items()}


@dataclass
class Gold(Capture):
    """The gold capture, with the draw it ran on: a float64 cell has nothing more precise to measure its
    round-off against, and a float32 run of the same draw probes it instead (:func:`.scale.round_off`)."""

    draw: Draw | None = None


def gold(source: Graph | Draw, dtype: torch.dtype, cell: Capture | None = None) -> Gold:
    """Autograd in float64 on CPU, on the inputs of a ``dtype`` cell (the check's own draw, when given). A float64
    CPU ``cell`` of that draw is its own gold: running it again computed the very same values (half the cost of a
    float64 check that needs its gold)."""
    draw = source if isinstance(source, Draw) else Draw.of(source)
    own = cell is not None and cell.dtype == GOLD_DTYPE and cell.device == torch.device(GOLD_DEVICE)
    captured = cell if own else draw.capture(GOLD_DEVICE, GOLD_DTYPE, inputs=rounded(draw.inputs, dtype))
    return Gold(**{field.name: getattr(captured, field.name) for field in fields(captured)}, draw=draw)


def judge(
    comparisons: Mapping[str, Comparison],
    manuals: Mapping[str, Any],
    captured: Capture,
    reference: Capture,
    rule: Rule,
    in_float64: Callable[[str], Comparison | None] | None = None,
    float64_run: Callable[[], Mapping[str, Any]] | None = None,
) -> dict[str, Judged]:
    """Re-judge every measured comparison (ok / mismatch / nonfinite) by the rule against ``reference``.

    ``comparisons`` and ``manuals`` are keyed by variable name; rows whose manual gradient
    could not be measured (missing, wrong shape, ...) keep their own status and are left out.
    Within the tensor-wide bound, every element must also be within ``k`` times autograd's error where
    it lies (:func:`_locally`), unless ``in_float64`` (the verdict, against the gold, of the same backward run
    in float64 on the gold's inputs, made when first asked) is ok: the formula is right and the cell's dtype
    rounded it there. A row the rule passes in half precision is confirmed by that run's gradients
    (``float64_run``, keyed by variable name; :func:`_confirmed`).
    """
    names = [
        name
        for name, c in comparisons.items()
        if c.status in _MEASURED and name in reference.variables and reference.variables[name].grad is not None
    ]
    golds = [_to_gold(dense(reference.variables[name].grad)) for name in names]
    errors = [_finite_error(captured.variables[n].grad, g) for n, g in zip(names, golds, strict=True)]
    scale = max((_finite_max(g.abs()) for g in golds), default=0.0)
    rounding = [_rounding_dtype(captured.variables[n].grad, captured.dtype) for n in names]
    floors = [_floor(rule, g, d, scale) for g, d in zip(golds, rounding, strict=True)]
    bounds = [rule.k * error + f for error, f in zip(errors, floors, strict=True)]
    judged_against = [
        _where_both_overflow(manuals[n], captured.variables[n].grad, g) for n, g in zip(names, golds, strict=True)
    ]
    decided = compare_all(
        [(_to_gold(manuals[n]), g, Tolerance(0.0, b)) for n, g, b in zip(names, judged_against, bounds, strict=True)]
    )
    decided = [
        _locally(c, manuals[n], captured.variables[n].grad, g, rule, d, scale)
        for n, c, g, d in zip(names, decided, golds, rounding, strict=True)
    ]
    decided = [
        _forgiven(c, n, in_float64, rule.k * FORGIVEN * error + f)
        for n, c, error, f in zip(names, decided, errors, floors, strict=True)
    ]
    confirming = captured.dtype in _HALF and any(c.status == OK for c in decided)
    again = _float64_gradients(float64_run) if confirming else {}
    decided = [
        _confirmed(c, g, again.get(n), captured.dtype, scale) for n, c, g in zip(names, decided, golds, strict=True)
    ]
    return {
        name: Judged(_explain(c, rule, error, f), c.maxdiff, error, f)
        for name, c, error, f in zip(names, decided, errors, floors, strict=True)
    }


def _forgiven(
    comparison: Comparison, name: str, in_float64: Callable[[str], Comparison | None] | None, bound: float
) -> Comparison:
    """A row that failed by at most ``bound`` (:data:`FORGIVEN` times the rule's own), or element by element
    only (:func:`_locally`), passed when the same backward run in float64 matches the gold: a right
    formula that the cell's dtype rounds more than autograd's fused kernels (a textbook softmax backward in
    float16 strays 2-3x autograd's error); a mistake fails there by its own size (Bessel's 3% in bfloat16 is
    only 2.6x autograd's error, and a fixed k = 4 passed it)."""
    if comparison.status != MISMATCH or in_float64 is None or not comparison.maxdiff <= bound:
        return comparison  # an element-by-element failure is within the rule's own bound, so within this one
    again = in_float64(name)
    if again is None or again.status != OK:
        return comparison
    note = f"{comparison.message}; the same backward run in float64 matches the gold: the formula is right"
    return replace(comparison, status=OK, approximate=True, mismatched=0, message=note)


def _confirmed(
    comparison: Comparison, gold: torch.Tensor, again: torch.Tensor | None, dtype: torch.dtype, scale: float
) -> Comparison:
    """A row the rule passed in float16 or bfloat16, failed where ``again`` (the same backward run in float64, see
    :func:`_float64_gradients`) misses the gold by :data:`KEPT_SHARE` of the cell dtype's resolution at that
    element, beyond what the run's own output dtype holds, float64's default tolerance and the gold's own rounding
    at the backward's ``scale`` (``db1``, zero in exact arithmetic, is round-off in both): the cell's round-off hid
    a mistake in the formula (1% on one row is within autograd's own error in bfloat16, may round to autograd's
    value bitwise, and a wrong small row beside large ones stays under a tensor-wide bound). A backward that
    accumulates in float32 misses the gold by 1e-7, far below; one the float64 run cannot give keeps its pass."""
    if comparison.status != OK or again is None or again.shape != gold.shape:
        return comparison
    g, m = gold, _to_gold(again)
    float64 = resolve(None, GOLD_DTYPE).at_scale(_finite_max(g.abs()))
    allowance = KEPT_SHARE * torch.finfo(dtype).eps * g.abs() + (g.to(again.dtype).to(g.dtype) - g).abs()
    floor = float64.atol + FLOOR_EPS * torch.finfo(GOLD_DTYPE).eps * scale
    excess = (m - g).abs() - allowance - (floor + float64.rtol * g.abs())
    cell = str(dtype).removeprefix("torch.")
    return _strayed(
        comparison,
        (excess > 0) & torch.isfinite(g),
        excess,
        m,
        g,
        lambda count, index, manual, golden: (
            f"within the rule's bound in {cell}, but the same backward run in float64 still misses the gold at "
            f"{count}/{g.numel()} elements (a mistake in the formula that {cell}'s round-off hid, or a backward "
            f"rounding on purpose); worst at index {index}: manual {manual:.6g} in float64 vs gold {golden:.6g}"
        ),
    )


def _float64_gradients(float64_run: Callable[[], Mapping[str, Any]] | None) -> dict[str, torch.Tensor]:
    """The float64 run's real floating gradients by variable name, looked at once: none when it could not run;
    none but its own for a gradient when it rounded another to half precision on the way (``dy = (...).half()``,
    mixed precision written out: the rest then carry that rounding, as large as the mistakes looked for; a
    gradient's own final cast is allowed for by :func:`_confirmed`)."""
    try:
        values = {} if float64_run is None else float64_run()
    except Exception:  # noqa: BLE001 - a backward that cannot run in float64 refutes nothing
        return {}
    gradients = {
        n: dense(v.detach()) for n, v in values.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
    }
    halved = {n for n, v in gradients.items() if v.dtype in _HALF}
    return {n: v for n, v in gradients.items() if not halved - {n}}


def _strayed(
    comparison: Comparison,
    strays: torch.Tensor,
    excess: torch.Tensor,
    manual: torch.Tensor,
    gold: torch.Tensor,
    says: Callable[[int, tuple[int, ...], float, float], str],
) -> Comparison:
    """``comparison`` failed at the elements ``strays`` marks, its worst the one of largest ``excess``, with the
    message ``says(count, index, manual there, gold there)``; as it was when none strays."""
    count = int(strays.sum())
    if not count:
        return comparison
    worst = int(torch.where(strays, excess, -math.inf).reshape(-1).argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), gold.shape))
    flat_m, flat_g = manual.reshape(-1)[worst].item(), gold.reshape(-1)[worst].item()
    return replace(
        comparison,
        status=MISMATCH,
        approximate=False,
        mismatched=count,
        message=says(count, index, flat_m, flat_g),
        worst_index=index,
        worst_manual=flat_m,
        worst_reference=flat_g,
    )


def local_spread(errors: torch.Tensor) -> torch.Tensor:
    """Each element's error, or ``LOCAL_MEDIANS`` times the median error along its row (the first dimension)
    or its column (the others), whichever is largest: round-off where the element lies. One ill-conditioned
    row or column (a raw input feature) raises its own elements only; a vector's share the vector's median.
    An empty tensor (a batch of 0) has nothing to spread."""
    if errors.numel() == 0:
        return errors
    matrix = errors.reshape(-1, 1) if errors.dim() <= 1 else errors.reshape(errors.shape[0], -1)
    rows, columns = matrix.median(1, keepdim=True).values, matrix.median(0, keepdim=True).values
    return torch.maximum(matrix, LOCAL_MEDIANS * torch.maximum(rows, columns)).reshape(errors.shape)


def _locally(
    comparison: Comparison,
    manual: Any,
    grad: torch.Tensor,
    gold: torch.Tensor,
    rule: Rule,
    dtype: torch.dtype,
    scale: float,
) -> Comparison:
    """``comparison`` (the rule's tensor-wide verdict), failed when some element strays past ``k`` times
    autograd's error where it lies (:func:`local_spread`) plus its own rounding to ``dtype``: one huge
    element's error (a raw feature of 1000 in float16) set a bound that hid a 4% mistake in every other."""
    if comparison.status != OK:
        return comparison
    m, a, g = (as_real(_to_gold(dense(t.detach()))) for t in (manual, grad, gold))
    finite = torch.isfinite(m) & torch.isfinite(a) & torch.isfinite(g)
    rounding = (g.to(dtype).to(GOLD_DTYPE) - g).abs() + FLOOR_EPS * torch.finfo(GOLD_DTYPE).eps * scale
    bound = rule.k * local_spread(torch.where(finite, (a - g).abs(), 0.0)) + (
        rounding if rule.floor is None else rule.floor
    )
    return _strayed(
        comparison,
        ((m - g).abs() > bound) & finite,
        (m - g).abs() - bound,
        m,
        g,
        lambda count, index, manual, golden: (
            f"{count}/{m.numel()} elements are further from the gold than {rule.k:g}x autograd's error where they "
            f"lie; worst at index {index}: manual {manual:.6g} vs gold {golden:.6g}"
        ),
    )


def _where_both_overflow(manual: Any, grad: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """The gold, but autograd's own value where it and the manual gradient are both not finite in the cell's dtype:
    a float16 ``dW`` of 6e5 overflows to inf for any formula, autograd's too, and judged against the finite gold a
    right backward was 'NaN or Inf where autograd is finite'; there the row is judged as the cell's own comparison
    judges it. A manual value that stays finite where autograd overflows is still judged against the gold."""
    cell = _to_gold(dense(grad))
    finite = torch.isfinite(cell) | torch.isfinite(_to_gold(dense(manual)))
    return torch.where(finite, gold, cell)


def _finite_error(grad: torch.Tensor, gold: torch.Tensor) -> float:
    """``max |autograd - gold|`` where the difference is finite: where both are NaN (a ``where`` over a
    NaN branch) autograd is no further from the gold than anyone, and a NaN bound would judge nothing."""
    return _finite_max((_to_gold(dense(grad)) - gold).abs())


def _finite_max(values: torch.Tensor) -> float:
    """The largest finite value (0 when there is none): the rule's bounds are numbers, never NaN."""
    finite = values[torch.isfinite(values)]
    return float(finite.max()) if finite.numel() else 0.0


def decided(same_dtype: Comparison, by_rule: Comparison) -> Comparison:
    """The figures against same-dtype autograd, the verdict (and its worst element) from the rule."""
    return replace(
        same_dtype,
        status=by_rule.status,
        message=by_rule.message,
        approximate=by_rule.approximate,
        mismatched=by_rule.mismatched,
        worst_index=by_rule.worst_index,
        worst_manual=by_rule.worst_manual,
        worst_reference=by_rule.worst_reference,
        tolerance=by_rule.tolerance,
    )


def _explain(comparison: Comparison, rule: Rule, autograd_err: float, floor: float) -> Comparison:
    """A failing row's message, prefixed with the tensor-wide bound it broke (when it broke that one)."""
    if comparison.status == OK or comparison.maxdiff <= rule.k * autograd_err + floor:
        return comparison
    prefix = (
        f"|manual-gold| {comparison.maxdiff:.3g} > {rule.k:g}*|autograd-gold| {autograd_err:.3g} + floor {floor:.3g}"
    )
    message = comparison.message.replace("vs autograd", "vs gold")
    return replace(comparison, message=f"{prefix}; {message}")


def _floor(rule: Rule, gold_grad: torch.Tensor, dtype: torch.dtype, scale: float) -> float:
    """The error a perfect gradient still has: its rounding to ``dtype`` plus the gold's own float64
    rounding, taken at the ``scale`` of the whole backward (a gradient that cancels to ~0 has no scale)."""
    if rule.floor is not None:
        return rule.floor
    parts = as_real(gold_grad)
    representation = _finite_max((parts.to(dtype).to(GOLD_DTYPE) - parts).abs())
    return representation + FLOOR_EPS * torch.finfo(GOLD_DTYPE).eps * scale


def _rounding_dtype(grad: torch.Tensor, dtype: torch.dtype) -> torch.dtype:
    """The dtype a gradient's parts round to in a ``dtype`` cell: the cell's, but a complex gradient keeps its own
    (a half-precision cell casts no complex tensor; rounded to the real ``dtype`` its imaginary part was discarded,
    with a UserWarning out of the check)."""
    return grad.real.dtype if grad.is_complex() else dtype


def _to_gold(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on the gold's device in float64 (complex128 when complex): the gold's own gradient too, which a
    forward's ``.float()`` leaves float32 in the float64 run (judged against it as it was, a right backward of the
    mixed-precision idiom was a ``dtype`` row)."""
    return tensor.detach().to(GOLD_DEVICE, torch.complex128 if tensor.is_complex() else GOLD_DTYPE)


def _round(value: Any, dtype: torch.dtype, memo: dict[int, Any]) -> Any:
    def tensor(t: torch.Tensor) -> torch.Tensor:
        if not t.is_floating_point():
            return t
        return t.detach().to(dtype).to(t.dtype).requires_grad_(t.requires_grad)

    return rebuild(value, tensor, lambda m: m, memo)
