"""The one orchestrator: a graph and hand-written gradients in, a Report out.

Everything that judges a gradient goes through :func:`evaluate`: the CLI, the pytest
plugin and the grader call it, so there is one comparison code path.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import numbers
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import torch

from . import compare as cmp
from . import scale
from .capture import Capture, Variable, autograd_nodes, collector_paused
from .devices import HALF_PRECISION, cross_pairs, parse_dtype, skip_reason
from .diagnose import hint, root_causes
from .draw import Draw
from .finite_diff import AUTOGRAD, BOTH, UNRELIABLE, Sample, spot_check, summarize
from .forward import container_gap, held_gradient, is_record
from .graph import Case, Graph, refuse_bare_strings, validate_arguments
from .manual import TIMED_OUT, gradient_pattern, run_manual
from .reference import Judged, Rule, decided, gold, judge
from .report import ERROR, SKIPPED, Report, Row
from .tolerance import Tolerance, resolve

TAMPERED = (
    "the backward changed autograd's own gradients or the capture's records (through gc or .data): nothing is judged"
)
"""The error of a check whose backward reached the references (it runs in this process: see :func:`_fingerprint`)."""


def check(
    graph: Graph,
    manual: Any,
    *,
    case: str | None = None,
    device: str = "cpu",
    dtype: str | torch.dtype = "float32",
    tolerance: Tolerance | str | None = None,
    overrides: Mapping[str, Tolerance] | None = None,
    variables: Iterable[str] | None = None,
    name_rule: str = "d{name}",
    rule: Rule | str | None = None,
    fd: Iterable[str] = (),
    timeout: float | None = None,
) -> Report:
    """Run ``graph`` and the hand-written backward ``manual``; compare every gradient with autograd.

    With ``rule`` (``"reference"`` or a :class:`Rule`), gradients are judged by the reference-relative
    rule against a float64 CPU gold (see :mod:`.reference`); ``"tolerance"`` keeps the tolerance in
    every dtype, and by default half-precision cells under the default tolerance take the rule.
    ``fd`` names variables to spot-check by finite differences; that runs in float64 cells only, where the
    differences are meaningful (a ValueError in another dtype, rather than a check that silently skips it). ``timeout``
    (seconds) stops a backward that runs too long: an error naming the line it was on.
    """
    name = case or graph.name
    dtype = parse_dtype(dtype if isinstance(dtype, str) else str(dtype))
    validate_arguments(tolerance, (str(device),), (str(dtype),), name_rule, variables, rule, timeout)
    refuse_bare_strings(fd=fd)
    fd = list(fd)
    _refuse_fd(fd, [dtype])
    rule = _usable(rule, overrides, tolerance, dtype)
    unavailable = skip_reason(str(device))
    if unavailable:
        return Report([_cell_row(name, device, dtype, SKIPPED, unavailable)])
    try:
        draw = Draw.of(graph)
        captured = draw.capture(device, dtype)
        reference = gold(draw, dtype, captured) if rule is not None else None
    except Exception as error:  # noqa: BLE001 - one broken graph is one error row, not a crash
        return Report([_cell_row(name, device, dtype, ERROR, f"{type(error).__name__}: {error}")])
    diverged = scale.diverges(captured, reference) if reference is not None else ""
    if diverged:
        return Report(
            [_cell_row(name, device, dtype, ERROR, f"the reference rule cannot judge this forward: {diverged}")]
        )
    unknown = (
        _unknown("variables", variables, captured)
        or _unknown("fd", fd, captured)
        or _unknown("overrides", overrides, captured)
    )
    if unknown:
        return Report([_cell_row(name, device, dtype, ERROR, unknown)])
    before = _fingerprint(captured)
    result = run_manual(manual, captured.namespace, timeout)
    if result.unavailable:
        return Report([_cell_row(name, device, dtype, ERROR, f"the backward could not be read: {result.error}")])
    if before != _fingerprint(captured):
        return Report([_cell_row(name, device, dtype, ERROR, TAMPERED)])
    gold_of = functools.cache(
        functools.partial(gold, draw, dtype, captured) if reference is None else lambda: reference
    )
    report = evaluate(
        captured,
        result.values,
        case=name,
        tolerance=tolerance,
        overrides=overrides,
        variables=variables,
        name_rule=name_rule,
        error=result.error,
        gold=gold_of,
        rule=rule,
        in_float64=functools.partial(_run_in_float64, manual, gold_of, timeout),
    )
    if fd:
        return _with_fd(report, draw, captured, result.values, fd, name_rule)
    return report


def _refuse_fd(fd: list[str], dtypes: list[torch.dtype]) -> None:
    """Finite differences in float32 or lower say nothing (their round-off swamps the difference): asked for with
    no float64 cell, they would silently check nothing."""
    if fd and torch.float64 not in dtypes:
        names = sorted(_dtype(d) for d in dtypes)
        raise ValueError(f"fd= expected a float64 cell to run in (dtype='float64'), got dtypes {names}")


def _run_in_float64(manual: Any, gold_of: Callable[[], Capture], timeout: float | None) -> Mapping[str, Any]:
    """What the backward assigns run on the float64 gold's inputs: the second opinion on a gradient a
    lower-precision cell cannot decide (:func:`.scale.round_off`). A backward that stops there decides nothing:
    judged as it stood, a right one whose ``assert dw.dtype == torch.float16`` sat before its last line failed with
    its gradient half built (so an assert that only raises here, after the last gradient, escapes the confirmation:
    a known gap). What it prints there is not shown (the student saw its output once, from the run that is
    reported), and what it draws leaves the caller's random generator where it was (a script's later draws
    depended on whether a lower-precision check needed this run)."""
    silenced = contextlib.redirect_stdout(io.StringIO())
    with silenced, contextlib.redirect_stderr(io.StringIO()), torch.random.fork_rng(devices=[]):
        result = run_manual(manual, gold_of().namespace, timeout)
    if result.error:
        raise RuntimeError(result.error)
    return result.values


def _fingerprint(captured: Capture) -> tuple[Any, ...]:
    """What the judging rests on: each variable's identity, problem and gradient object, and the sum, the
    sum of squares and a position-weighted sum of every autograd gradient (one pass). The backward runs
    in this process: one that walks the interpreter (``gc``) to the references and changes them (values,
    order or the capture's own records) is caught by the change, not judged against them."""
    records = tuple((name, id(v), v.problem, v.parameter, id(v.grad)) for name, v in captured.variables.items())
    grads = [v.grad for v in captured.variables.values()]
    if not grads or not all(isinstance(g, torch.Tensor) for g in grads):
        return records  # a gradient replaced by something else already changed its id among the records
    if any(g.layout != torch.strided or g.is_complex() or g.dtype != grads[0].dtype for g in grads):
        grads = [cmp.as_real(cmp.dense(g)).reshape(-1).double() for g in grads]
    values = torch.nan_to_num(cmp.flat(grads).double(), nan=0.5, posinf=1.5, neginf=-1.5)
    return (*records, float(values.sum()), float(values.dot(values)), float(values.cumsum(0).sum()))


def cross_check(
    graph: Graph,
    manual: Any,
    manual_on: tuple[str, str],
    reference_on: tuple[str, str],
    *,
    case: str | None = None,
    tolerance: Tolerance | str | None = None,
    variables: Iterable[str] | None = None,
    name_rule: str = "d{name}",
) -> Report:
    """The manual gradients computed on one (device, dtype) judged against autograd on another.

    Rows are labelled ``A->B`` in device (and dtype, when they differ); the tolerance is
    that of the less precise dtype of the two, and where that is float16 or bfloat16 under the default
    tolerance, the reference rule judges as it does that dtype's cell (autograd's error taken on that side).
    """
    (device_a, dtype_a), (device_b, dtype_b) = manual_on, reference_on
    validate_arguments(tolerance, (device_a, device_b), (dtype_a, dtype_b), name_rule, variables, None, None)
    da, db = parse_dtype(dtype_a), parse_dtype(dtype_b)
    name = case or graph.name
    try:
        draw = Draw.of(graph)
        source, target = draw.capture(device_a, da), draw.capture(device_b, db)
    except Exception as error:  # noqa: BLE001 - one broken graph is one error row, not a crash
        return Report([_cell_row(name, f"{device_a}->{device_b}", da, ERROR, f"{type(error).__name__}: {error}")])
    diverged = scale.diverges(source, target)
    if diverged:
        message = f"the two cells cannot be compared: {diverged}"
        return Report([_cell_row(name, f"{device_a}->{device_b}", da, ERROR, message)])
    before = [_fingerprint(source), _fingerprint(target)]
    result = run_manual(manual, source.namespace)
    if before != [_fingerprint(source), _fingerprint(target)]:
        return Report([_cell_row(name, f"{device_a}->{device_b}", da, ERROR, TAMPERED)])
    dtypes = {name_rule.format(name=n): v.grad.dtype for n, v in target.variables.items() if v.grad is not None}
    moved = {k: _moved(v, dtypes.get(k, db), target.device) for k, v in result.values.items()}
    looser = max(resolve(tolerance, da), resolve(tolerance, db), key=lambda t: (t.rtol, t.atol))
    coarser = max(da, db, key=lambda d: torch.finfo(d).eps)
    rule = _usable(None, None, tolerance, coarser)  # a half-precision side is judged as check() judges its cell
    gold_of = functools.cache((lambda: target) if db == torch.float64 else functools.partial(gold, draw, coarser))
    report = evaluate(
        target,
        moved,
        case=name,
        tolerance=looser,
        variables=variables,
        name_rule=name_rule,
        error=result.error,
        gold=gold_of,
        precision=coarser,
        peer=source,
        rule=rule,
        in_float64=functools.partial(_run_in_float64, manual, gold_of, None),
    )
    device = f"{device_a}->{device_b}"
    dtype = dtype_a if da == db else f"{dtype_a}->{dtype_b}"
    tensors = {(case, device, dtype, variable): pair for (case, _, _, variable), pair in report.tensors.items()}
    return Report([replace(row, device=device, dtype=dtype) for row in report.rows], tensors)


def _moved(value: Any, dtype: torch.dtype, device: torch.device) -> Any:
    """A manual gradient of the source cell on the target's device in ``dtype``, that of autograd's gradient of the
    same variable there: a variable the forward computes in a dtype of its own (``lf = logits.float()``) keeps it
    (cast to the cell's dtype, a right gradient of the mixed-precision idiom was a ``dtype`` row)."""
    return value.detach().to(device, dtype) if _is_float(value) else value


def _usable(
    rule: Rule | str | None, overrides: Mapping[str, Tolerance] | None, tolerance: Any, dtype: torch.dtype
) -> Rule | None:
    """The rule that judges a cell, or None for the tolerance; refuse overrides that are not tolerances.

    ``"reference"`` is the default :class:`Rule`, ``"tolerance"`` none. Unsaid, a half-precision cell
    (float16, bfloat16) under the default tolerance is judged by the rule:
    round-off there is a share of the gradient as large as a classic mistake's, and the makemore reference
    solution failed 14 of its 26 gradients in float16 (each was as close to the float64 gold as autograd's own).
    A variable given its own tolerance in ``overrides`` is judged by it, the others by the rule.
    """
    wrong = {name: value for name, value in (overrides or {}).items() if not isinstance(value, Tolerance)}
    if wrong:
        raise ValueError(f"overrides= expected a Tolerance per variable, got {wrong!r}")
    if rule == "tolerance":
        return None
    if rule == "reference":
        return Rule()
    if rule is None and tolerance in (None, "default") and dtype in HALF_PRECISION:
        return Rule()
    return rule


def run_case(
    case: Case,
    devices: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    *,
    tolerance: Tolerance | str | None = None,
    rule: Rule | str | None = None,
    fd: Iterable[str] = (),
    cross: bool = False,
) -> Report:
    """Check a registered case on every device × dtype, in one Report; unavailable devices become
    skipped rows with the reason. ``cross`` adds, for each pair of usable devices, the manual
    gradients of one judged against autograd on the other. ``tolerance`` overrides the case's."""
    refuse_bare_strings(devices=devices, dtypes=dtypes, fd=fd)
    devices, dtypes, fd = list(devices or case.devices), list(dtypes or case.dtypes), list(fd)
    _refuse_fd(fd, [parse_dtype(str(d)) for d in dtypes])
    reports = []
    for device in devices:
        reason = skip_reason(device)
        for dtype in dtypes:
            if reason:
                reports.append(Report([_cell_row(case.name, device, parse_dtype(str(dtype)), SKIPPED, reason)]))
                continue
            reports.append(
                check(
                    case.graph,
                    case.manual,
                    case=case.name,
                    device=device,
                    dtype=dtype,
                    tolerance=tolerance or case.tolerance,
                    overrides=case.overrides,
                    variables=case.variables,
                    name_rule=case.name_rule,
                    rule=rule or case.rule,
                    fd=fd if parse_dtype(str(dtype)) == torch.float64 else (),
                    timeout=case.timeout,
                )
            )
    for a, b in cross_pairs(devices) if cross else ():
        for dtype in dtypes:
            reports.append(
                cross_check(
                    case.graph,
                    case.manual,
                    (a, dtype),
                    (b, dtype),
                    case=case.name,
                    tolerance=tolerance or case.tolerance,
                    variables=case.variables,
                    name_rule=case.name_rule,
                )
            )
    return Report.merge(reports)


@collector_paused()
def evaluate(
    captured: Capture,
    values: Mapping[str, Any],
    *,
    case: str,
    tolerance: Tolerance | str | None = None,
    overrides: Mapping[str, Tolerance] | None = None,
    variables: Iterable[str] | None = None,
    name_rule: str = "d{name}",
    error: str | None = None,
    gold: Capture | Callable[[], Capture] | None = None,
    rule: Rule | None = None,
    independent: bool = False,
    precision: torch.dtype | None = None,
    peer: Capture | None = None,
    in_float64: Callable[[], Mapping[str, Any]] | None = None,
) -> Report:
    """Judge the gradients in ``values`` (keyed by gradient name, e.g. ``dlogits``) against ``captured``.

    ``error`` is what stopped the backward part-way, if anything: it explains the
    gradients it left missing. ``independent`` says each gradient was computed from
    correct upstream gradients (the grader's independent mode): every wrong one is then
    its own root cause, instead of possibly following from a wrong one upstream.
    ``gold`` is the float64 CPU capture of the same draw (see :func:`.reference.gold`),
    or a function that makes it when first needed: with ``rule``, measured gradients are
    decided by the reference-relative rule instead; without, it only serves the round-off
    test of the scale-aware default (:mod:`.scale`), which takes round-off to be that of
    ``precision`` when the manual gradients were computed in a coarser dtype than ``captured``,
    with ``peer`` the capture in that dtype (a cross check; the rule takes autograd's error on the coarser side).
    ``in_float64`` gives what the same backward assigns on the gold's inputs, for the gradients the gold
    alone cannot decide.
    """
    captured = _dense(captured)
    wanted = set(variables) if variables is not None else None
    selected = [v for v in captured.variables.values() if wanted is None or v.name in wanted]
    manuals = {v.name: _dense_value(_given(values, v, name_rule)) for v in selected}
    in_float64_manuals = None if in_float64 is None else _keyed(in_float64, selected, name_rule)
    comparisons = _compare(
        captured, selected, manuals, tolerance, overrides or {}, gold, precision, peer, in_float64_manuals
    )
    known = {name_rule.format(name=n) for n in captured.variables}
    unclaimed = [n for n in values if n not in known]
    for name, comparison in comparisons.items():
        if comparison.status == cmp.MISSING:
            comparison.message = _missing(name, name_rule, values, error, unclaimed)
    judged: dict[str, Judged] = {}
    if rule is not None and gold is not None:
        gold = gold() if callable(gold) else gold
        second = None if in_float64_manuals is None else _float64_verdicts(gold, in_float64_manuals)
        coarser = max([captured, peer or captured], key=lambda c: torch.finfo(c.dtype).eps)  # a cross check's rounder
        ruled = {name: c for name, c in comparisons.items() if name not in (overrides or {})}
        judged = judge(ruled, manuals, coarser, gold, rule, second, in_float64_manuals)
        comparisons.update({name: decided(comparisons[name], j.comparison) for name, j in judged.items()})
    wrong = {name for name, c in comparisons.items() if c.status in cmp.WRONG_VALUE}
    causes = dict.fromkeys(wrong, "") if independent else root_causes(wrong, {v.name: v for v in selected})
    hints = {
        name: hint(name, manuals[name], captured, comparisons[name])
        for name, cause in causes.items()
        if not cause and (not isinstance(manuals[name], torch.Tensor) or cmp.comparable(manuals[name]))
    }
    device, dtype = str(captured.device), _dtype(captured.dtype)
    rows = [_row(case, device, dtype, v.name, v, comparisons[v.name], causes, hints) for v in selected]
    if judged:
        rows = [_with_rule(row, judged.get(row.variable), rule or Rule()) for row in rows]
    rows += _extras(case, device, dtype, values, captured, name_rule, tolerance, _graph_scale(comparisons))
    if error and TIMED_OUT in error:
        rows.append(Row(case, device, dtype, "", "", ERROR, message=error))
    elif error and not any(row.status == cmp.MISSING for row in rows):
        message = f"the backward raised: {error}; every gradient had been assigned and is judged as it stood"
        rows.append(Row(case, device, dtype, "", "", ERROR, message=message))
    return Report(rows, _failing_tensors(rows, values, captured, name_rule))


def _compare(
    captured: Capture,
    selected: list[Variable],
    manuals: Mapping[str, Any],
    tolerance: Tolerance | str | None,
    overrides: Mapping[str, Tolerance],
    gold: Capture | Callable[[], Capture] | None,
    precision: torch.dtype | None,
    peer: Capture | None,
    in_float64: Callable[[], Mapping[str, Any]] | None = None,
) -> dict[str, cmp.Comparison]:
    """One batched comparison of every checkable variable (a scale-aware tolerance is applied at
    the gradient's own scale), then the round-off test (:mod:`.scale`); a name capture could not pin to one
    tensor is an ``unchecked`` row."""
    checkable = [v for v in selected if v.problem is None]
    tolerances = {v.name: overrides.get(v.name) or resolve(tolerance, v.grad.dtype) for v in checkable}
    pairs = [(manuals[v.name], v.grad, tolerances[v.name]) for v in checkable]
    compared = dict(zip([v.name for v in checkable], cmp.compare_all(pairs), strict=True))
    compared.update(_zero_gradients(captured, manuals, tolerances, compared))
    scaled = {name: t.scaled for name, t in tolerances.items()}
    compared.update(scale.round_off(captured, compared, manuals, scaled, gold, precision, peer, in_float64))
    return {v.name: compared.get(v.name) or _unchecked(v) for v in selected}


def _keyed(
    values: Callable[[], Mapping[str, Any]], selected: list[Variable], name_rule: str
) -> Callable[[], Mapping[str, Any]]:
    """``values`` (keyed by gradient name, made when first asked for) keyed by variable name, as ``manuals`` is."""

    def keyed() -> Mapping[str, Any]:
        given = values()
        return {v.name: _dense_value(_given(given, v, name_rule)) for v in selected}

    return functools.cache(keyed)


def _float64_verdicts(gold: Capture, values: Callable[[], Mapping[str, Any]]) -> Callable[[str], cmp.Comparison | None]:
    """The verdict on a name of the same backward run in float64 on the gold's inputs (None when it could not
    run there), judged as step 4 of :mod:`.scale` judges it, for every name at once when first asked: the
    reference rule's second opinion on rows it fails and on rows it passes."""

    @functools.cache
    def verdicts() -> Mapping[str, cmp.Comparison]:
        try:
            given = values()
            return scale.in_float64_verdicts(gold, list(given), given)
        except Exception:  # noqa: BLE001 - a backward that cannot run in float64 decides nothing
            return {}

    return lambda name: verdicts().get(name)


def _unchecked(variable: Variable) -> cmp.Comparison:
    """A name capture could not pin to one tensor: ``unchecked`` for an intermediate (what is computed
    from it is still checked), a failing ``graph`` row for a parameter (nothing else checks its gradient)."""
    if variable.parameter:
        message = f"{variable.problem}; it first held a parameter, whose gradient nothing else checks"
        return cmp.Comparison(cmp.GRAPH, message)
    return cmp.Comparison(cmp.UNCHECKED, variable.problem or "")


def _zero_gradients(
    captured: Capture,
    manuals: Mapping[str, Any],
    tolerances: Mapping[str, Tolerance],
    compared: Mapping[str, cmp.Comparison],
) -> dict[str, cmp.Comparison]:
    """The variables whose autograd gradient is exactly zero, judged again at the scale of the gradient
    flowing into them (their consumers'), else at the graph's (:data:`.tolerance.Tolerance.zero_scale`)."""
    zero = [name for name, c in compared.items() if c.scale == 0.0 and tolerances[name].scaled]
    if not zero:
        return {}
    graph = _graph_scale(compared)
    variables = captured.variables
    pairs = []
    for name in zero:
        flowing_in = max((compared[c].scale or 0.0 for c in variables[name].consumers if c in compared), default=0.0)
        pairs.append((manuals[name], variables[name].grad, replace(tolerances[name], zero_scale=flowing_in or graph)))
    return dict(zip(zero, cmp.compare_all(pairs), strict=True))


def _graph_scale(compared: Mapping[str, cmp.Comparison]) -> float:
    """The largest gradient scale of a graph's compared variables; 1 (absolute) when every one is zero."""
    return max((c.scale or 0.0 for c in compared.values()), default=0.0) or 1.0


def _failing_tensors(
    rows: list[Row], values: Mapping[str, Any], captured: Capture, rule: str
) -> dict[tuple[str, str, str, str], tuple[torch.Tensor, torch.Tensor]]:
    """(manual, autograd) of each failing row whose manual gradient is a tensor with values to draw: the heatmaps."""
    pairs = {}
    for row in (row for row in rows if row.failed):
        manual = values.get(rule.format(name=row.variable))
        variable = captured.variables.get(row.variable)
        if variable is None or variable.grad is None:
            continue
        if isinstance(manual, torch.Tensor) and cmp.comparable(manual):
            pairs[(row.case, row.device, row.dtype, row.variable)] = (manual.detach(), variable.grad)
    return pairs


def _row(
    case: str,
    device: str,
    dtype: str,
    name: str,
    v: Any,
    c: cmp.Comparison,
    causes: dict[str, str],
    hints: dict[str, str],
) -> Row:
    return Row(
        case=case,
        device=device,
        dtype=dtype,
        variable=name,
        shape=str(tuple(v.value.shape)),
        status=c.status,
        exact=c.exact,
        approximate=c.approximate,
        maxdiff=c.maxdiff,
        rel_err=c.rel_err,
        ulp=c.ulp,
        mismatched=c.mismatched,
        numel=c.numel,
        message=c.message,
        worst_index="" if c.worst_index is None else str(c.worst_index),
        worst_manual=c.worst_manual,
        worst_reference=c.worst_reference,
        rtol=c.tolerance.rtol if c.tolerance else None,
        atol=c.tolerance.atol if c.tolerance else None,
        root_cause=causes.get(name) == "",
        caused_by=causes.get(name) or "",
        hint=hints.get(name, ""),
        line=v.line,
    )


def _with_rule(row: Row, judged: Judged | None, rule: Rule) -> Row:
    if judged is None:
        return row
    return replace(row, k=rule.k, floor=judged.floor, gold_err=judged.gold_err, autograd_err=judged.autograd_err)


def _with_fd(
    report: Report, draw: Draw, captured: Capture, values: Mapping[str, Any], fd: list[str], rule: str
) -> Report:
    """Add the finite-difference spot check's one-line summary to the rows of the variables in ``fd``."""
    manual = {name: _given(values, captured.variables[name], rule) for name in fd}
    try:
        samples = spot_check(captured.graph, manual, fd, reference=captured, draw=draw)
    except Exception as error:  # noqa: BLE001 - a spot check that cannot run leaves the verdicts as they are
        note = f"fd not run: {type(error).__name__}: {error}"
        return Report([replace(row, fd=note) if row.variable in fd else row for row in report.rows], report.tensors)
    rows = [_judged_by_fd(replace(row, fd=summarize(samples.get(row.variable, []))), samples) for row in report.rows]
    return Report(rows, report.tensors)


def _judged_by_fd(row: Row, samples: Mapping[str, list[Sample]]) -> Row:
    """A row whose autograd the finite differences refute (a wrong custom ``autograd.Function``) is a failing
    ``graph`` row: its verdict against autograd, ``ok`` for a manual gradient copying the wrong formula, or a
    mismatch for a right one, judged against a reference that is itself wrong."""
    refuted = next((s for s in samples.get(row.variable, []) if s.verdict in UNRELIABLE), None)
    if refuted is None:
        return row
    manual = {AUTOGRAD: "agrees with finite differences", BOTH: "agrees with autograd"}.get(
        refuted.verdict, "agrees with neither"
    )
    message = (
        f"autograd disagrees with finite differences at {refuted.index} (autograd {refuted.autograd:.6g}, "
        f"fd {refuted.central:.6g}): the forward's own derivative is wrong there (a custom autograd.Function?), "
        f"so autograd is no reference for it; the manual gradient {manual}"
    )
    return replace(row, status=cmp.GRAPH, message=message, root_cause=False, caused_by="", hint="")


def _is_float(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _missing(name: str, rule: str, values: Mapping[str, Any], error: str | None, unclaimed: list[str]) -> str:
    """Why ``name``'s gradient is missing: never assigned (and why not), assigned None, or absent from the
    container the backward gave for its holder (``dmodel`` without ``'2.bias'``: it read as never assigned)."""
    grad_name = rule.format(name=name)
    if grad_name in values:
        return f"{grad_name} is None: expected a tensor"
    gap = container_gap(values, name, rule)
    if gap:
        return gap
    if error:
        return f"no {grad_name}: the backward stopped before assigning it ({error})"
    guess = difflib.get_close_matches(grad_name, unclaimed, n=1) if unclaimed else []
    return f"no {grad_name} was assigned" + (f"; did you mean {guess[0]}?" if guess else "")


def _given(values: Mapping[str, Any], variable: Variable, rule: str) -> Any:
    """The backward's gradient for ``variable``, under its name or any of its aliases."""
    for name in (variable.name, *variable.aliases):
        found = held_gradient(values, name, rule)
        if found is not None:
            return found
    return None


def _dense(captured: Capture) -> Capture:
    """``captured`` with sparse autograd gradients (``nn.Embedding(sparse=True)``) made dense, for the hints."""
    if all(v.grad is None or v.grad.layout == torch.strided for v in captured.variables.values()):
        return captured
    variables = {
        n: replace(v, grad=None if v.grad is None else cmp.dense(v.grad)) for n, v in captured.variables.items()
    }
    return replace(captured, variables=variables)


def _dense_value(value: Any) -> Any:
    return cmp.dense(value) if isinstance(value, torch.Tensor) else value


def _unknown(argument: str, names: Iterable[str] | None, captured: Capture) -> str:
    """What is wrong with ``variables=`` or ``fd=`` when it names no forward variable (a typo would
    check nothing)."""
    unknown = sorted(set(names or ()) - set(captured.variables))
    if not unknown:
        return ""
    return (
        f"{argument}= names {unknown}, which the forward of {captured.graph.name!r} does not have; "
        f"expected some of {list(captured.variables)}"
    )


def _extras(
    case: str,
    device: str,
    dtype: str,
    values: Mapping[str, Any],
    captured: Capture,
    rule: str,
    tolerance: Tolerance | str | None,
    scale: float,
) -> list[Row]:
    """Rows for what is not a checked variable: a parameter that does not reach the loss (its gradient
    is zero: one given is compared with zeros, at the graph's gradient ``scale``), a parameter the
    forward reads from outside its inputs (it cannot be checked: a failing ``graph`` row), and
    gradients of an input that needs none or of no forward name at all (``extra``)."""
    rows = [
        _unreached(case, device, dtype, name, parameter, manual, tolerance, scale)
        for name, parameter in captured.unreached.items()
        if isinstance(manual := held_gradient(values, name, rule), torch.Tensor)
    ]
    unseen = _unseen_names(captured)
    for name, (tensor, holder) in unseen.items():
        shape = tuple(tensor.shape)
        rows.append(Row(case, device, dtype, name, str(shape), cmp.GRAPH, message=_unseen_message(name, shape, holder)))
    pattern = gradient_pattern(rule)
    known = set(captured.variables) | set(captured.unreached) | set(unseen) | {captured.graph.loss}
    for grad_name, value in values.items():
        match = pattern.match(grad_name)
        if match and (match["name"] == captured.graph.loss or _is_loss(match["name"], captured)):
            rows += _loss_row(case, device, dtype, grad_name, value)
            continue
        if not (match and isinstance(value, torch.Tensor)) or match["name"] in known:
            continue
        held = captured.namespace.get(match["name"])
        status = cmp.EXTRA
        if isinstance(held, torch.Tensor) and held.requires_grad and not _reaches(held, captured):
            message = f"{grad_name}: {match['name']} does not reach the loss: its gradient is zero, nothing to check"
        elif isinstance(held, torch.Tensor) and held.requires_grad:
            status = cmp.GRAPH  # a step whose gradient is given and cannot be judged: passing it would be a guess
            message = (
                f"{grad_name}: {match['name']} reaches the loss but capture did not see it bound (a walrus in a "
                f"comprehension, say): its gradient cannot be checked; bind it in a statement of its own"
            )
        elif isinstance(held, torch.Tensor):
            message = (
                f"{grad_name}: {match['name']} does not require grad (an input, or made from inputs alone): autograd "
                f"gives it no gradient"
            )
        else:
            guess = difflib.get_close_matches(match["name"], list(captured.variables), n=1)
            hint = f"; did you mean {rule.format(name=guess[0])}?" if guess else ""
            message = f"{grad_name} names no forward variable (there is no {match['name']!r}){hint}"
        rows.append(Row(case, device, dtype, grad_name, str(tuple(value.shape)), status, message=message))
    return rows


def _reaches(tensor: torch.Tensor, captured: Capture) -> bool:
    """Whether the loss was computed from ``tensor``: its autograd node (or, for a leaf, the tensor) is in the
    loss's graph."""
    nodes = autograd_nodes(captured.namespace.get(captured.graph.loss))
    return any(node is tensor.grad_fn or getattr(node, "variable", None) is tensor for node in nodes)


def _loss_row(case: str, device: str, dtype: str, grad_name: str, value: Any) -> list[Row]:
    """A failing row for a gradient of the loss that is not 1 (``dloss = 2.0``; d(loss)/d(loss) is 1 by
    definition, and a backward that starts from another value scales everything after it); none when it is 1.
    A numpy array counts as the tensor it holds."""
    if hasattr(value, "__array__") and not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if isinstance(value, torch.Tensor):
        number = _one_number(value)
    elif isinstance(value, numbers.Number) and not isinstance(value, bool):
        number = value
    else:
        return []
    if number == 1:
        return []
    got = f"a tensor of shape {tuple(value.shape)}" if number is None else repr(_plain(number))
    message = f"{grad_name} is the loss's gradient with respect to itself: expected 1, got {got}"
    return [Row(case, device, dtype, grad_name, "()", cmp.MISMATCH, message=message)]


def _plain(number: numbers.Number) -> int | float | complex:
    """A number (a numpy scalar too) as Python's own, whose repr shows every digit that differs from 1 (an int
    as it is: 10**400 has no float)."""
    if isinstance(number, numbers.Integral):
        return int(number)
    if isinstance(number, numbers.Complex) and not isinstance(number, numbers.Real):
        return complex(number)
    return float(number)  # a Real, or a Decimal (no numbers.Real)


def _one_number(tensor: torch.Tensor) -> complex | float | None:
    """The value of a one-element tensor with arithmetic, or None (several elements, no values to read)."""
    if tensor.numel() != 1 or not cmp.comparable(tensor) or tensor.device.type == "meta":
        return None
    return tensor.detach().reshape(()).item()


def _is_loss(name: str, captured: Capture) -> bool:
    """``name`` holds the loss under another name (``total = y.sum(); return total``): a gradient given for it
    (d(loss)/d(loss) = 1) is no extra."""
    return captured.namespace.get(name) is captured.namespace.get(captured.graph.loss) is not None


def _unseen_message(name: str, shape: tuple[int, ...], holder: Any) -> str:
    """Why a parameter reaching the loss from outside the named steps is never checked, by what holds it."""
    if isinstance(holder, torch.nn.Module):
        return (
            f"{name} (shape {shape}) is a tensor the module computed from its parameters before the check (outside "
            f"forward, e.g. a tied weight's transpose): copied for the check it is cut from them, and the gradient "
            f"through it is never checked; compute it in forward()"
        )
    if holder is not None and not isinstance(holder, (list, tuple, dict)) and not is_record(holder):
        return (
            f"{name} (shape {shape}, requires grad) is held by a plain object of the inputs, where capture does not "
            f"look for parameters: its gradient is never checked; hold it in an nn.Module, a dataclass, a "
            f"SimpleNamespace, a list or a dict"
        )
    return (
        f"the forward reads {name} (shape {shape}, requires grad) from outside its inputs and named steps: its "
        f"gradient is never checked; pass it in inputs() (directly, or in a list, dict or module)"
    )


def _unseen_names(captured: Capture) -> dict[str, tuple[torch.Tensor, Any]]:
    """The parameters read from outside the inputs, named where they are found, with what holds them (None for a
    global or closure variable of the forward, ``GW``): an attribute of an input (``p.w``) or of a module, an item
    of a list in the inputs; else by their position."""
    if not captured.unseen:
        return {}
    places: dict[int, tuple[str, Any]] = {}
    function = getattr(captured.graph.forward, "__func__", captured.graph.forward)
    code = getattr(function, "__code__", None)
    if code is not None:
        cells = zip(code.co_freevars, (cell.cell_contents for cell in function.__closure__ or ()), strict=False)
        for name, value in [*getattr(function, "__globals__", {}).items(), *cells]:
            places.setdefault(id(value), (name, None))
    for name, value in captured.namespace.items():
        _places_in(value, name, places, depth=3)
    return {
        places.get(id(t), (f"<parameter {i}>", None))[0]: (t.detach(), places.get(id(t), ("", None))[1])
        for i, t in enumerate(captured.unseen, start=1)
    }


def _places_in(value: Any, path: str, places: dict[int, tuple[str, Any]], depth: int) -> None:
    """Name what ``value`` holds by its path (``layers[0].weight``) and remember its holder: through lists, tuples,
    dicts and objects' attributes, ``depth`` levels down (a plain object's tensors, where capture does not look, are
    found). Modules of Python (``torch`` in a code string's namespace) and classes are not walked."""
    if depth == 0 or isinstance(value, (torch.Tensor, type, str, bytes, types.ModuleType)):
        return
    if isinstance(value, (list, tuple)):
        items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    elif isinstance(value, dict):
        items = [(f"{path}[{key!r}]", item) for key, item in value.items()]
    else:
        items = [(f"{path}.{key}", item) for key, item in getattr(value, "__dict__", {}).items()]
    for place, item in items:
        places.setdefault(id(item), (place, value))
        _places_in(item, place, places, depth - 1)


def _unreached(
    case: str,
    device: str,
    dtype: str,
    name: str,
    parameter: torch.Tensor,
    manual: torch.Tensor,
    tolerance: Tolerance | str | None,
    scale: float,
) -> Row:
    """A parameter that does not reach the loss has a zero gradient: a manual one is judged against zeros,
    at the graph's gradient ``scale`` (a given gradient as large as the others is wrong, however small)."""
    zeros = torch.zeros_like(parameter.detach())
    comparison = cmp.compare(manual, zeros, replace(resolve(tolerance, zeros.dtype), zero_scale=scale))
    note = f"{name} does not reach the loss: its gradient is zero"
    message = note if comparison.status == cmp.OK else f"{note}; {comparison.message}"
    variable = Variable(name, parameter.detach(), zeros, 0, "")
    return _row(case, device, dtype, name, variable, replace(comparison, message=message), {}, {})


def _cell_row(case: str, device: str, dtype: torch.dtype, status: str, message: str) -> Row:
    return Row(
        case=case, device=str(device), dtype=_dtype(dtype), variable="", shape="", status=status, message=message
    )


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
