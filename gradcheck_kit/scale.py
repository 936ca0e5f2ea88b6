"""The scale-aware default judgement: each variable's absolute tolerance, the round-off test, and peers.

Step 1 applies ``atol = fraction x the gradient's own scale`` (its largest finite
``|autograd|``), so an error that is large relative to the gradient fails at any size.

Step 2 is for gradients that are zero in exact arithmetic. Makemore's ``db1`` (batch norm
removes the bias) is, in autograd's own float32 value, 2e-9 of round-off from summing a
6e-3 gradient: a correct manual ``db1`` differs from it by 120% of its own scale, but by
5e-7 of the gradient flowing in. A mismatch in step 1 is re-judged at the round-off floor
``NOISE_EPS x eps(dtype) x scale flowing in`` (3e-5 x 6e-3 for ``db1``) only when
autograd's own value *is* round-off. In a float32 (or lower) cell that is measured: the
float64 gold of the same draw shows autograd off by at least ``ROUND_OFF_SHARE`` of its
own scale (``db1``: 100%), and the floor is then at most ``ROUND_OFF_K`` times that
error (for ``db1``, 16 x 2e-9: the correct backward uses 7.5% of it). A gradient that is
genuinely small, ``y = 1e-6 * w``, is computed by autograd to float32's relative precision
(1e-7 of itself) and keeps the strict judgement, so a 3% error there still fails; and in
bfloat16, where the floor is twice the flow, the cap keeps a manual gradient 25x off from
passing. In a float64 cell nothing more precise exists, so a less precise run measures it: the floor
(5.7e-14 of the flow) is applied where it exceeds step 1's atol, unless a float32 run of the same draw
computes the gradient to within ``ROUND_OFF_SHARE`` of the float64 value (a genuinely small gradient,
``y = 6.6e-34 * w``, which the floor would pass at any error). A gold whose forward values differ from the
cell's (a random draw that depends on the dtype) confirms nothing. In a lower-precision cell, a pass at the floor
where the float64 gold stands above float64's own floor (a small gradient, not a zero one: a model at its optimum)
is confirmed by the same backward run in float64, as peers are (step 4).

Step 3, in a float32 (or lower) cell, judges every other mismatch against the same gold:
the manual gradient passes as autograd's *peer* when it is within ``PEER_K`` times autograd's
own error of the gold, element by element: that error relative to each element's size plus the
tensor's median size, taken as large as it is along the element's row or column (one raw input
feature makes a whole row of ``dW1`` ill-conditioned, and the rest stays as strict). Step 1's tolerance is
relative to the gradient's own scale, but the round-off of an ill-conditioned step is relative
to the terms it sums: batch norm on inputs with a common offset of 100 leaves the correct
float32 ``dW1`` 3.8e-6 from the gold while autograd is 7.6e-6 from it, far past 1e-5 x its 0.1
scale. Measured element by element, one huge element's round-off (a raw feature of 1e5 in a
ridge regression) or one ill-conditioned row sets no allowance for the rest: a forgotten penalty
term, and Bessel's n / (n - 1) beside one raw feature, passed while the allowance was one figure for
the whole tensor. A classic mistake stays 10^3x past
(Bessel's 3% against autograd's 1e-6). Where autograd is off by more than ``PEER_MAX_ERROR``
(relative), or a forward value changes sign between the cell and the gold, autograd's distance
from the gold is a kink, tie or branch taken differently, as large as the gradient itself,
and no peer is passed: a 5-10% wrong gradient passed otherwise.

Step 4 decides what no peer can: given the same backward's gradients computed in float64 on the
gold's inputs (``in_float64``; :func:`gradcheck_kit.check` runs it only then), where manual and gold
take the same branches and round-off is 1e-16, the row passes when those match the gold at
float64's own judgement, and keeps its mismatch otherwise (a feature offset by 1000 leaves autograd's
float32 ``dW1`` 0.9% off the gold: the correct backward failed, with a false hint).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch

from . import compare as cmp
from .capture import Capture, Variable
from .reference import FLOOR_EPS, decided, local_spread
from .tolerance import Tolerance, resolve

NOISE_EPS = 256
"""The round-off floor, in epsilons of the manual gradients' dtype times the scale of the gradient flowing in."""
ROUND_OFF_SHARE = 0.1
"""autograd counts as round-off when the gold shows it off by this share of its own scale or more."""
ROUND_OFF_K = 16
"""Where the gold measures autograd's own error, the floor is at most this many times that error."""
PEER_K = 4
"""A mismatch passes as autograd's peer when its distance from the gold is at most this many times autograd's."""
NEAR_PEER = 2
"""A row missing the peer bound by at most this factor passes when the same backward in float64 matches the gold
(as :data:`.reference.FORGIVEN` for the reference rule)."""
PEER_MAX_ERROR = 1e-3
"""autograd's error, relative to each element's size plus the median, above which it is no round-off (a kink
or tie the float64 run takes differently: a ReLU input or max-pool pair within round-off): no peer is passed."""


def round_off(
    captured: Capture,
    comparisons: Mapping[str, cmp.Comparison],
    manuals: Mapping[str, Any],
    scaled: Mapping[str, bool],
    gold: Capture | Callable[[], Capture | None] | None,
    precision: torch.dtype | None = None,
    peer: Capture | None = None,
    in_float64: Callable[[], Mapping[str, Any]] | None = None,
) -> dict[str, cmp.Comparison]:
    """Step 2: the mismatches judged at a scale-aware tolerance (``scaled``) that turn out to be round-off.

    ``precision`` is the dtype the manual gradients were computed in when it is coarser than
    the capture's, and ``peer`` autograd in that dtype (a cross check); by default both are
    the capture's own. In float64 nothing more precise exists and the round-off floor applies
    as it is. Otherwise the float64 ``gold`` of the same draw decides (:func:`_against_gold`), and
    ``in_float64`` (the manual gradients the same backward computes on the gold's inputs, keyed like
    ``manuals``, made when first needed) decides what the gold cannot. Without a gold (a face that has
    none, such as the in-notebook ``cmp``) the floor applies unconfirmed.
    """
    noise = precision or captured.dtype
    mismatches = [name for name, c in comparisons.items() if c.status == cmp.MISMATCH and scaled.get(name)]
    if not mismatches:
        return {}
    floors = {name: _floor(captured, comparisons, name, noise) for name in mismatches}
    if noise == torch.float64 or gold is None:
        above = {name: floor for name, floor in floors.items() if floor > comparisons[name].tolerance.atol}
        if above and gold is not None:
            above = _probed_in_float32(captured, comparisons, above, gold)
        return _at_floors(captured, comparisons, manuals, above, dict.fromkeys(above))
    reference = _gold(gold)
    if reference is None:
        return {}  # a gold was asked for and could not be made: nothing is confirmed
    return _against_gold(captured, _coarser(captured, peer), reference, comparisons, manuals, floors, in_float64)


def _coarser(captured: Capture, peer: Capture | None) -> Capture:
    """The autograd whose round-off the manual gradients may share: the cross check's other capture when it is
    the coarser one (float32 manual gradients judged against float64 autograd), else the capture judged against
    (float64 manual gradients against float32 autograd: the float64 run's round-off is no measure of float32's,
    and a right db1, 8.7e-19 against autograd's 2.3e-9 of round-off, failed)."""
    if peer is None or _eps(peer.dtype) <= _eps(captured.dtype):
        return captured
    return peer


def _probed_in_float32(
    captured: Capture,
    comparisons: Mapping[str, cmp.Comparison],
    floors: Mapping[str, float],
    gold: Capture | Callable[[], Capture | None],
) -> dict[str, float]:
    """The floors of a float64 cell that a float32 run of the same draw does not refute.

    Nothing is more precise than float64, but float32 is 2^29 times less: where autograd's float64 value is
    round-off (a sum that cancels to zero, ``db1``), the float32 run's value is round-off of the same terms, off
    by far more than :data:`ROUND_OFF_SHARE` of the float64 value; where it is a genuinely small gradient (a
    physical constant, ``y = 6.6e-34 * w``), float32 computes it to its own relative precision, and the floor
    (``NOISE_EPS`` epsilons of the flow, 10^19 times such a gradient) would pass any error: the strict judgement
    stands. Without a float32 run that reproduces the cell's forward (no draw to run, a forward that fails or
    diverges in float32) the floor applies unconfirmed, as before. A float32 value that underflowed where float32
    holds round-off of the flow refutes the floor too (:func:`_underflowed`).
    """
    probe = _float32_probe(gold, captured)
    if probe is None:
        return dict(floors)
    unconfirmed = {}
    for name, floor in floors.items():
        variable = probe.variables.get(name)
        if variable is None or variable.grad is None or _flows_in_float64(probe, variable):
            unconfirmed[name] = floor
            continue
        error = _autograd_error(variable.grad, captured, name)
        scale = comparisons[name].scale or 0.0
        small = _underflowed(variable.grad, scale, _flowing_in(captured, comparisons, name))
        if not small and (error is None or not error < ROUND_OFF_SHARE * scale):
            unconfirmed[name] = floor
    return unconfirmed


def _underflowed(grad: torch.Tensor, scale: float, flowing_in: float) -> bool:
    """The float32 run's gradient underflowed (zero or subnormal) where the float64 value is below float32's range
    too, although float32 holds round-off of the gradient flowing in (``eps x flowing_in`` is a normal number): the
    gradient is genuinely small, not round-off of that flow (``x @ w`` on inputs of 1e-30 makes ``dw`` 1e-60, which a
    transposed or 1% wrong formula matched at the floor, 10^17 times it, as float32's zeros looked like round-off).
    A float32 zero counts only where float32 could not hold the float64 value at all (below its smallest subnormal):
    above it, a zero is a sum that cancelled exactly (a batch-norm bias's round-off of 6e-42, whose right value 0
    failed)."""
    tiny = torch.finfo(torch.float32).tiny
    magnitude = _finite_magnitude(grad)
    unheld = magnitude > 0.0 or scale < tiny * _eps(torch.float32)
    below = 0.0 < scale < tiny and magnitude < tiny and unheld
    return below and _eps(torch.float32) * flowing_in >= tiny


def _flows_in_float64(probe: Capture, variable: Variable) -> bool:
    """The gradient flowing into ``variable`` was computed in float64 even in the float32 run (a forward that
    calls ``.double()``): that run rounds it no more than the cell, and refutes nothing."""
    consumers = [probe.variables[c].value for c in variable.consumers if c in probe.variables]
    return any(value.dtype in (torch.float64, torch.complex128) for value in consumers)


def _float32_probe(gold: Capture | Callable[[], Capture | None], captured: Capture) -> Capture | None:
    """The float32 run of the gold's draw on CPU, or None when there is none or it does not reproduce the cell's
    forward (:func:`diverges`). It is made once and kept with the gold (in its ``derived``): the grader judges every
    submission of a float64 assignment against one gold, and ran the forward again in float32 for each."""
    reference = _gold(gold)
    draw = getattr(reference, "draw", None)
    if draw is None:
        return None
    if "float32 run" not in reference.derived:
        try:
            reference.derived["float32 run"] = draw.capture("cpu", torch.float32)
        except Exception:  # noqa: BLE001 - a forward that cannot run in float32 refutes nothing
            reference.derived["float32 run"] = None
    probe = reference.derived["float32 run"]
    return None if probe is None or diverges(probe, captured) else probe


def _against_gold(
    captured: Capture,
    autograd: Capture,
    reference: Capture,
    comparisons: Mapping[str, cmp.Comparison],
    manuals: Mapping[str, Any],
    floors: Mapping[str, float],
    in_float64: Callable[[], Mapping[str, Any]] | None,
) -> dict[str, cmp.Comparison]:
    """Re-judge each mismatch against the float64 gold of the same draw, one of three ways.

    Where autograd's own error is at least :data:`ROUND_OFF_SHARE` of its scale, autograd's
    value is round-off (a gradient zero in exact arithmetic): the floor applies, at most
    :data:`ROUND_OFF_K` times that error. Elsewhere the manual gradient is autograd's peer:
    it passes when it is within :data:`PEER_K` times autograd's own error of the gold, element
    by element (:func:`_peers`), as a correct backward of an ill-conditioned step is (inputs
    with a large common offset: a batch-normalised layer on raw pixels measured 3.8e-6 from the
    gold where autograd was 7.6e-6). Nothing is re-judged when the gold's forward does not
    reproduce the cell's, and no peer is passed when a value changed sign between the two
    forwards (a ReLU input within round-off of zero): autograd's error is then a branch taken
    differently, not round-off. What no peer can decide, the same backward run in float64 on the
    gold's own inputs does (:func:`_in_float64`): there manual and gold take the same branches and
    round-off is 10^-16, so a correct formula matches and a wrong one fails by its own size.
    """
    forwards = _Forwards.kept(autograd, reference)
    if forwards is not None and forwards.diverged:
        return {}
    errors = {name: _autograd_error(cmp.dense(autograd.variables[name].grad), reference, name) for name in floors}
    round_off = {
        name: min(floors[name], ROUND_OFF_K * error)
        for name, error in errors.items()
        if error is not None
        and error >= ROUND_OFF_SHARE * (comparisons[name].scale or 0.0)
        and floors[name] > comparisons[name].tolerance.atol
    }
    judged = _at_floors(captured, comparisons, manuals, round_off, errors)
    nonzero = {n: c for n, c in judged.items() if _nonzero_in_float64(captured, reference, comparisons, n)}
    claim = f"at the round-off floor of {_name(autograd.dtype)}, where the float64 gold is no round-off"
    judged.update(_confirmed_in_float64(reference, nonzero, comparisons, in_float64, claim, wide_only=True))
    peers = [name for name in floors if name not in round_off and name in reference.variables]
    flipped = forwards.flipped if forwards is not None and peers else ""
    dtype = _name(autograd.dtype)
    undecided = dict.fromkeys(peers, f"{dtype} cannot decide it alone ({flipped} between the {dtype} and float64 runs)")
    if peers and not flipped:
        passed, undecided = _peers(autograd, reference, {n: comparisons[n] for n in peers}, manuals, autograd.dtype)
        claim = f"within {PEER_K:g}x autograd's own error of the float64 gold"
        judged.update(_confirmed_in_float64(reference, passed, comparisons, in_float64, claim))
        missed = {n: comparisons[n] for n in peers if n not in passed and n not in undecided}
        judged.update(_near_peers(autograd, reference, missed, manuals, in_float64))
    if undecided and in_float64 is not None:
        undecided_comparisons = {n: comparisons[n] for n in sorted(undecided)}
        judged.update(_in_float64(autograd, reference, undecided_comparisons, manuals, in_float64, undecided))
    return judged


def _nonzero_in_float64(
    captured: Capture, reference: Capture, comparisons: Mapping[str, cmp.Comparison], name: str
) -> bool:
    """The gold's gradient stands above float64's own round-off floor: a gradient that is small, not zero in exact
    arithmetic (``db1`` is round-off in float64 too and needs no second run; a model at its optimum is not)."""
    gold = reference.variables.get(name)
    if gold is None or gold.grad is None or not gold.grad.numel():
        return False
    return _finite_magnitude(cmp.dense(gold.grad)) > _floor(captured, comparisons, name, torch.float64)


def _confirmed_in_float64(
    reference: Capture,
    passed: Mapping[str, cmp.Comparison],
    comparisons: Mapping[str, cmp.Comparison],
    in_float64: Callable[[], Mapping[str, Any]] | None,
    claim: str,
    wide_only: bool = False,
) -> dict[str, cmp.Comparison]:
    """The passes (``claim``: on what grounds) that the same backward run in float64 on the gold's inputs does not
    refute; one it refutes keeps its mismatch, saying so. One that cannot run there stands, and with ``wide_only``
    so does one whose gradient that run did not make in float64: at the round-off floor a float32 sum's own
    rounding (``dw = torch.zeros(4); dw += ...`` in a loop) is as large as the gradient.

    A lower-precision cell passes peers of autograd (step 3) and gradients at the round-off floor (step 2) on what
    it cannot tell apart: where a row of the gradient is ill-conditioned (a raw feature offset by 1000) autograd
    strays 3e-4 there and a formula 0.1% wrong on that row passed as a peer; at a trained model's optimum the
    gradient is round-off in float32 and a formula 2x or -1x the right one passed at the floor. In float64 the same
    formula is off the gold by its own size (:func:`in_float64_verdicts`)."""
    if not passed or in_float64 is None:
        return dict(passed)
    try:
        values = in_float64()
        names = [name for name in passed if not wide_only or _made_in_float64(values.get(name))]
        again = in_float64_verdicts(reference, names, values)
    except Exception:  # noqa: BLE001 - a backward that cannot run in float64 confirms nothing and refutes nothing
        return dict(passed)
    confirmed = dict(passed)
    for name, verdict in again.items():
        if verdict.status != cmp.OK:
            note = (
                f"{claim}, but the same backward run in float64 on the gold's inputs is off the gold: {verdict.message}"
            )
            confirmed[name] = replace(comparisons[name], message=f"{note}; {comparisons[name].message}")
    return confirmed


def _made_in_float64(value: Any) -> bool:
    """A gradient the float64 run made in float64 (or complex128)."""
    return isinstance(value, torch.Tensor) and value.dtype in (torch.float64, torch.complex128)


def _near_peers(
    autograd: Capture,
    reference: Capture,
    missed: Mapping[str, cmp.Comparison],
    manuals: Mapping[str, Any],
    in_float64: Callable[[], Mapping[str, Any]] | None,
) -> dict[str, cmp.Comparison]:
    """The rows that missed the peer bound (step 3) whose formula the same backward run in float64 shows right.

    Such a row passes when its values are within :data:`NEAR_PEER` times the bound: round-off is not normal
    enough to stay within 12 of autograd's medians everywhere (a correct batch-norm backward on a feature offset
    by 100 had one element of 256 1% past it); further out it keeps its mismatch, saying the formula is right
    and loses precision in the cell's dtype (a closed-form batch-norm backward, 0.5% off on a feature offset by
    100), where the row read like a mistake in its values. A row whose float64 run is off the gold too is left
    as it is."""
    if not missed or in_float64 is None:
        return {}
    try:
        again = in_float64_verdicts(reference, list(missed), in_float64())
    except Exception:  # noqa: BLE001 - a backward that cannot run in float64 leaves the strict verdict standing
        return {}
    dtype = _name(autograd.dtype)
    judged = {}
    for name, verdict in again.items():
        if verdict.status != cmp.OK:
            continue
        if _cell_as_close_as_autograd(autograd, reference, manuals[name], name, NEAR_PEER):
            note = (
                f"within {NEAR_PEER * PEER_K:g}x autograd's own error of the float64 gold, and the same backward run "
                f"in float64 on the gold's inputs matches the gold: {dtype} round-off"
            )
            judged[name] = replace(decided(missed[name], verdict), message=note)
        else:
            note = (
                f"the same backward run in float64 on the gold's inputs matches the gold, but its {dtype} values are "
                f"further from the gold than {NEAR_PEER * PEER_K:g}x autograd's own error: a right formula that loses "
                f"precision in {dtype}"
            )
            judged[name] = replace(missed[name], message=f"{note}; {missed[name].message}")
    return judged


def _in_float64(
    autograd: Capture,
    reference: Capture,
    comparisons: Mapping[str, cmp.Comparison],
    manuals: Mapping[str, Any],
    in_float64: Callable[[], Mapping[str, Any]],
    why: Mapping[str, str],
) -> dict[str, cmp.Comparison]:
    """Each mismatch no peer could judge (``why``: the reason, per name), decided by the same backward run in
    float64 on the gold's inputs:
    it passes when that run matches the gold at float64's own default judgement (its round-off floor
    included) and the cell's own values are as close to the gold as autograd's (:func:`_as_close_as_autograd`:
    a formula right in exact arithmetic that loses precision in the cell's dtype still fails); otherwise its
    message says which of the two failed. A backward that cannot run in float64 confirms nothing."""
    try:
        compared = in_float64_verdicts(reference, list(comparisons), in_float64())
    except Exception:  # noqa: BLE001 - a backward that cannot run in float64 leaves the strict verdict standing
        return {}
    dtype = _name(autograd.dtype)
    judged = {}
    for name, again in compared.items():
        cannot = why[name]
        if again.status != cmp.OK:
            note = f"{cannot}; the same backward run in float64 on the gold's inputs is off the gold too"
            note += f": {again.message}"
        elif not _cell_as_close_as_autograd(autograd, reference, manuals[name], name):
            note = f"{cannot}; the same backward in float64 matches the gold, but its {dtype} values are further"
            note += f" from the gold than {PEER_K:g}x autograd's own error: a formula that loses precision in {dtype}"
        else:
            note = f"{cannot}; the same backward run in float64 on the gold's inputs matches the gold"
            judged[name] = replace(decided(comparisons[name], again), message=note)
            continue
        judged[name] = replace(comparisons[name], message=f"{note}; {comparisons[name].message}")
    return judged


def in_float64_verdicts(reference: Capture, names: list[str], in64: Mapping[str, Any]) -> dict[str, cmp.Comparison]:
    """The same backward's float64 gradients (``in64``, computed on the gold's inputs) judged against the gold at
    float64's own default, its round-off floor included where a float32 run of the gold's draw shows autograd's
    value is round-off, as in a float64 cell (``db1``, zero in exact arithmetic, is round-off there too; a
    genuinely small ``dw`` of 1e-44 is not): the one judgement behind step 4 and the reference rule's second
    chance (:func:`.reference.judge`)."""
    names = [name for name in names if isinstance(in64.get(name), torch.Tensor) and name in reference.variables]
    values = {n: _as_gold(in64[n], reference.variables[n].grad) for n in names}
    pairs = [(values[n], reference.variables[n].grad, _own_default(in64[n])) for n in names]
    compared = dict(zip(names, cmp.compare_all(pairs), strict=True))
    compared.update(round_off(reference, compared, values, dict.fromkeys(names, True), reference))
    return compared


def _as_gold(value: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """A floating gradient of the float64 run in the gold's dtype: one the backward made in float32 even there
    (``dw = torch.zeros(3); dw += ...``) is judged by its values (a ``dtype`` row, it refuted a right formula)."""
    same_kind = value.is_floating_point() and gold.is_floating_point() or value.is_complex() and gold.is_complex()
    return value.to(gold.dtype) if same_kind and value.dtype != gold.dtype else value


def _own_default(value: torch.Tensor) -> Tolerance:
    """float64's default tolerance, or that of a less precise dtype the float64 run's gradient came out in."""
    coarser = value.dtype if value.is_floating_point() and _eps(value.dtype) > _eps(torch.float64) else torch.float64
    return resolve(None, coarser)


def _cell_as_close_as_autograd(
    autograd: Capture, reference: Capture, manual: Any, name: str, factor: float = 1.0
) -> bool:
    """The cell's manual gradient for ``name`` is as close to the gold as autograd's, element by element (within
    ``factor`` times the peer bound)."""
    gold, grad = (cmp.dense(c.variables[name].grad).detach() for c in (reference, autograd))
    if not isinstance(manual, torch.Tensor) or manual.shape != gold.shape:
        return False
    flat = [cmp.as_real(t).to("cpu", torch.float64) for t in (manual.detach(), grad, gold)]
    error, typical = _relative_error(flat[1], flat[2])
    return error is not None and _as_close_as_autograd(*flat, typical, autograd.dtype, factor)


def _at_floors(
    captured: Capture,
    comparisons: Mapping[str, cmp.Comparison],
    manuals: Mapping[str, Any],
    floors: Mapping[str, float],
    errors: Mapping[str, float | None],
) -> dict[str, cmp.Comparison]:
    """The variables that pass at their round-off floor, with a note saying so."""
    variables = captured.variables
    pairs = [(manuals[n], variables[n].grad, replace(comparisons[n].tolerance, atol=f)) for n, f in floors.items()]
    compared = zip(floors, cmp.compare_all(pairs), strict=True)
    return {n: _noted(c, comparisons[n].scale, floors[n], errors[n]) for n, c in compared if c.status == cmp.OK}


def _peers(
    autograd: Capture,
    reference: Capture,
    comparisons: Mapping[str, cmp.Comparison],
    manuals: Mapping[str, Any],
    dtype: torch.dtype,
) -> tuple[dict[str, cmp.Comparison], dict[str, str]]:
    """The mismatches as close to the gold as autograd is, element by element, with a note saying so; and the
    names no peer can be judged for, each with the reason (autograd's own error too large, or complex).

    autograd's error is measured relative to each element's size plus the tensor's median size, and
    pooled per element (:func:`_local_errors`): one ill-conditioned row or column (a raw feature of 1e5,
    an unstandardised input offset by 100) sets no allowance for the rest, where a 0.2% mistake
    (Bessel's ``n / (n - 1)`` at a batch of 512) passed while the allowance was one figure for the
    whole tensor. The manual gradient passes when every element is within ``PEER_K`` times its
    local error (times its size plus the median) of the gold, plus the gold's rounding to ``dtype``.
    A largest error above :data:`PEER_MAX_ERROR` is no round-off (a kink or a tie taken
    differently): no peer.
    """
    names, pairs, errors, gates, undecided = [], [], [], [], {}
    for name in comparisons:
        gold = cmp.dense(reference.variables[name].grad).detach()
        if gold.is_complex() or manuals[name].is_complex():
            undecided[name] = f"{_name(dtype)} cannot decide a complex gradient alone (none is judged as a peer)"
            continue
        gold = gold.to("cpu", torch.float64)
        grad = cmp.dense(autograd.variables[name].grad).detach().to(gold)
        error, typical = _relative_error(grad, gold)
        if error is None or error > PEER_MAX_ERROR:
            why = (
                "autograd's own value is off the float64 gold by more than round-off"
                if bool(gold.any())
                else "the float64 gold is zero everywhere: no round-off to measure"
            )
            undecided[name] = f"{_name(dtype)} cannot decide it alone ({why})"
            continue
        manual = manuals[name].detach().to("cpu", torch.float64)
        floor = FLOOR_EPS * torch.finfo(torch.float64).eps * typical
        names.append(name)
        pairs.append((manual, gold, Tolerance(PEER_K * error + _eps(dtype) / 2, PEER_K * error * typical + floor)))
        errors.append(error)
        gates.append(_as_close_as_autograd(manual, grad, gold, typical, dtype))
    judged = zip(names, errors, gates, cmp.compare_all(pairs), strict=True)
    passed = {
        name: replace(
            decided(comparisons[name], against_gold),
            message=(
                f"as accurate as autograd: within {PEER_K:g}x autograd's own error (at most {error:.2g} of each "
                f"element's size plus the median, as large as along its row or column) of the float64 gold "
                f"of the same draw"
            ),
        )
        for name, error, within, against_gold in judged
        if within and against_gold.status == cmp.OK
    }
    return passed, undecided


def _local_errors(grad: torch.Tensor, gold: torch.Tensor, typical: float) -> torch.Tensor:
    """autograd's error at each element relative to ``|gold| + typical``, as large as round-off is where the
    element lies (:func:`.reference.local_spread`)."""
    relative = ((grad - gold).abs() / (gold.abs() + typical)).nan_to_num(nan=0.0, posinf=0.0)
    return local_spread(relative)


def _as_close_as_autograd(
    manual: torch.Tensor,
    grad: torch.Tensor,
    gold: torch.Tensor,
    typical: float,
    dtype: torch.dtype,
    factor: float = 1.0,
) -> bool:
    """Every element (where both are finite) of ``manual`` within ``factor`` x ``PEER_K`` times autograd's local
    error of the gold (:func:`_local_errors`, times its size plus ``typical``), plus the gold's rounding to
    ``dtype``."""
    floor = FLOOR_EPS * torch.finfo(torch.float64).eps * typical
    bound = factor * PEER_K * _local_errors(grad, gold, typical) * (gold.abs() + typical) + _eps(dtype) / 2 * gold.abs()
    finite = torch.isfinite(manual) & torch.isfinite(gold)
    return not bool(((manual - gold).abs() > bound + floor)[finite].any())


def _relative_error(grad: torch.Tensor, gold: torch.Tensor) -> tuple[float | None, float]:
    """autograd's largest error against ``gold`` relative to ``|gold| + median|gold|``, and that median;
    ``None`` when there is nothing finite to measure."""
    grad, magnitude = grad.detach().to(gold), gold.abs()
    finite = torch.isfinite(magnitude) & torch.isfinite(grad)
    if not bool(finite.any()):
        return None, 0.0
    typical = float(magnitude[finite].median()) or float(magnitude[finite].max())
    if typical == 0.0:
        return None, 0.0
    difference = (grad - gold).abs()[finite]
    return float((difference / (magnitude[finite] + typical)).max()), typical


def _gold(gold: Capture | Callable[[], Capture | None] | None) -> Capture | None:
    """The gold, made now when it is a function; None when it cannot be made (its forward failed in float64)."""
    if not callable(gold):
        return gold
    try:
        return gold()
    except Exception:  # noqa: BLE001 - a forward that fails in float64 confirms nothing; the strict verdict stands
        return None


def diverges(cell: Capture, other: Capture) -> str:
    """Which forward value, if any, differs between two runs of one draw by more than rounding can
    explain (over 1% of its elements off by half their size): the runs did not compute the same thing."""
    forwards = _Forwards.of(cell, other)
    return forwards.diverged if forwards is not None else ""


@dataclass(frozen=True)
class _Forwards:
    """The forward values two runs of one draw share, each run's concatenated in float64 on CPU (complex ones
    part by part): one pass over them all (a loop of small tensor operations per variable cost more than the
    forward it guards)."""

    names: list[str]
    lengths: torch.Tensor
    segment: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    dtypes: tuple[torch.dtype, torch.dtype]

    @classmethod
    def kept(cls, cell: Capture, other: Capture) -> _Forwards | None:
        """:meth:`of`, kept with ``other`` (in its ``derived``) while it is asked of the same ``cell``: the grader
        judges every submission against one capture and one gold, and concatenating their forward values again
        for each cost a fifth of judging it. One pair is kept: another cell takes its place, so a gold asked of
        many captures holds none of them."""
        kept = other.derived.get("forwards")
        if kept is None or kept[0] is not cell or kept[1] is not other.variables:
            kept = other.derived["forwards"] = (cell, other.variables, cls.of(cell, other))
        return kept[2]

    @classmethod
    def of(cls, cell: Capture, other: Capture) -> _Forwards | None:
        pairs = [
            (name, _flat(variable.value), _flat(other.variables[name].value))
            for name, variable in cell.variables.items()
            if name in other.variables
            and other.variables[name].value.shape == variable.value.shape
            and variable.value.numel()
        ]
        pairs = [(name, a, b) for name, a, b in pairs if a.numel() == b.numel()]
        if not pairs:
            return None
        a = torch.cat([value for _, value, _ in pairs]).to("cpu", torch.float64)
        b = torch.cat([twin for _, _, twin in pairs]).to("cpu", torch.float64)
        lengths = torch.tensor([value.numel() for _, value, _ in pairs])
        segment = torch.repeat_interleave(torch.arange(len(pairs)), lengths)
        return cls([name for name, _, _ in pairs], lengths, segment, a, b, (cell.dtype, other.dtype))

    @functools.cached_property
    def diverged(self) -> str:
        """What :func:`diverges` says of these two runs."""
        magnitude = torch.nan_to_num(self.b.abs(), nan=0.0, posinf=0.0)
        scale = torch.zeros(len(self.names), dtype=torch.float64)
        scale.scatter_reduce_(0, self.segment, magnitude, "amax")
        slack = 8 * _eps(self.dtypes[0]) * scale[self.segment]
        off = (self.a - self.b).abs() > 0.5 * torch.maximum(self.a.abs(), self.b.abs()) + slack
        name, count, numel = self._first(off)
        if not name:
            return ""
        differs = (
            f"{name} differs between the {_name(self.dtypes[0])} and {_name(self.dtypes[1])} runs of the forward "
            f"at {count}/{numel} elements, by more than rounding explains"
        )
        return f"{differs}: {self._out_of_range() or self._unexplained()}"

    def _out_of_range(self) -> str:
        """The value furthest upstream that the wider run holds beyond the cell dtype's normal range, said as the
        cause (``w * 1e-7`` in float16 is subnormal, with a few significant bits; 1e5 overflows it); "" when none
        does, or below it in no more than 1% of its elements (a value crossing zero)."""
        info, cell = torch.finfo(self.dtypes[0]), _name(self.dtypes[0])
        size = self.b.abs()
        for flags, share, beyond in (
            (torch.isfinite(size) & (size > info.max), 0.0, f"beyond {cell}'s largest {info.max:.5g}"),
            ((size > 0) & (size < info.tiny), 0.01, f"below {cell}'s smallest normal number {info.tiny:.2g}"),
        ):
            counts = torch.segment_reduce(flags.double(), "sum", lengths=self.lengths, unsafe=True).tolist()
            found = [(n, int(c), k) for n, c, k in zip(self.names, counts, self.lengths.tolist(), strict=True)]
            upstream = [(n, c, k) for n, c, k in reversed(found) if c > share * k]
            if upstream:
                name, count, numel = upstream[0]
                return (
                    f"{name} holds values {beyond} at {count}/{numel} elements, where {cell} keeps few significant "
                    f"bits or none (scale them into range, or check in a wider dtype)"
                )
        return ""

    def _unexplained(self) -> str:
        """The causes of a divergence when no value leaves the cell dtype's range."""
        return (
            "a random draw that depends on the dtype (torch.rand_like, randn_like in the forward: draw it in "
            f"inputs()), or a forward too ill-conditioned for {_name(self.dtypes[0])} (check it in a wider dtype)"
        )

    @functools.cached_property
    def flipped(self) -> str:
        """Which value, if any, has an element of another sign (or zero in one run only): a kink or branch taken
        differently, which makes autograd's distance from the gold more than its round-off."""
        a, b = self.a, self.b
        flipped = (torch.sign(a) != torch.sign(b)) & torch.isfinite(a) & torch.isfinite(b)
        name, count, numel = self._first(flipped, share=0.0)
        return f"{name} changes sign at {count}/{numel} elements" if name else ""

    def _first(self, flags: torch.Tensor, share: float = 0.01) -> tuple[str, int, int]:
        """The first value with more than ``share`` of its elements flagged: its name, count and size."""
        counts = torch.segment_reduce(flags.double(), "sum", lengths=self.lengths, unsafe=True).tolist()
        for name, count, numel in zip(self.names, counts, self.lengths.tolist(), strict=True):
            if count > share * numel:
                return name, int(count), numel
        return "", 0, 0


def _flat(value: torch.Tensor) -> torch.Tensor:
    """A forward value as one flat real tensor, without autograd (complex: real and imaginary parts)."""
    value = cmp.dense(value.detach())  # a sparse forward value too (a sparse weight): reshape has no sparse kernel
    return cmp.as_real(value).reshape(-1)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _floor(captured: Capture, comparisons: Mapping[str, cmp.Comparison], name: str, noise: torch.dtype) -> float:
    """``NOISE_EPS x eps x`` the gradient flowing into ``name`` (:func:`_flowing_in`)."""
    return NOISE_EPS * _eps(noise) * _flowing_in(captured, comparisons, name)


def _flowing_in(captured: Capture, comparisons: Mapping[str, cmp.Comparison], name: str) -> float:
    """The largest scale among the gradients of ``name``'s consumers."""
    variable = captured.variables[name]
    return max((_scale(captured, comparisons, c) for c in variable.consumers), default=0.0)


def _scale(captured: Capture, comparisons: Mapping[str, cmp.Comparison], name: str) -> float:
    """A variable's scale as measured by its comparison, or measured here when it had none."""
    measured = comparisons.get(name)
    if measured is not None and measured.scale is not None:
        return measured.scale
    grad = captured.variables[name].grad if name in captured.variables else None
    return _finite_magnitude(grad) if grad is not None and grad.numel() else 0.0


def _autograd_error(grad: torch.Tensor, reference: Capture | None, name: str) -> float | None:
    """``max |autograd - gold|``, or ``None`` without a gold to measure it against."""
    gold_variable = None if reference is None else reference.variables.get(name)
    if gold_variable is None or gold_variable.grad is None:
        return None
    return float((grad.detach().to(gold_variable.grad) - cmp.dense(gold_variable.grad)).abs().max())


def _noted(comparison: cmp.Comparison, own: float | None, floor: float, error: float | None) -> cmp.Comparison:
    measured = "" if error is None else f" (|autograd-gold| {error:.2g})"
    note = (
        f"autograd's own value is round-off{measured} at scale {own or 0.0:.2g}: "
        f"judged at the round-off floor atol {floor:.2g} of the gradient flowing in"
    )
    return replace(comparison, message=note)


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps if dtype.is_floating_point or dtype.is_complex else 0.0


def _finite_magnitude(grad: torch.Tensor) -> float:
    magnitude = cmp.dense(grad.detach()).abs()
    magnitude = magnitude[torch.isfinite(magnitude)]
    return float(magnitude.max()) if magnitude.numel() else 0.0
