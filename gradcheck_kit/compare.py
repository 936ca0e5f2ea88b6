"""Compare a hand-written gradient with autograd's: every figure at once, and a status.

Two layers, as in ``torch.testing``: :func:`screen` decides whether a pair can be
compared at all (missing, not a tensor, shape, dtype, device), :func:`measure`
computes every figure for many pairs in one batched pass, and :func:`compare_all`
joins them and writes the one message of each row. Tensors are measured in flat
chunks, so comparing two huge tensors costs a few chunk-sized temporaries, not
copies of the tensors. Complex tensors are compared as their real and imaginary parts
(an index then ends in 0 for the real part, 1 for the imaginary).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .tolerance import Tolerance

OK = "ok"
MISMATCH = "mismatch"
NONFINITE = "nonfinite"
SHAPE = "shape"
DTYPE = "dtype"
DEVICE = "device"
MISSING = "missing"
NOT_TENSOR = "not_tensor"
EXTRA = "extra"
GRAPH = "graph"
UNCHECKED = "unchecked"
STATUSES = (OK, MISMATCH, NONFINITE, SHAPE, DTYPE, DEVICE, MISSING, NOT_TENSOR, EXTRA, GRAPH, UNCHECKED)
"""Every status a row can have. All but ``ok``, ``extra`` and ``unchecked`` fail the check: ``unchecked`` is
an intermediate whose own gradient cannot be checked (its name bound twice, its tensor changed in place), while
the gradients computed from it still are; ``graph`` is a gradient nothing else checks (a parameter read from a
global, autograd's own value NaN, or infinite where the manual value is not the same infinity)."""

FAILING = frozenset(STATUSES) - {OK, EXTRA, UNCHECKED}
WRONG_VALUE = frozenset({MISMATCH, NONFINITE, SHAPE, DTYPE, DEVICE})
"""Statuses of a gradient that was given but is wrong: the ones a mistake upstream can explain."""

CHUNK = 1 << 17
"""Elements measured at once: bounds the temporaries of one comparison (about 20 float64 arrays of this
length: 0.36 of a 16M-element float32 tensor at its peak, measured; 0.73 with twice the length, ~5% faster)."""

_INT_VIEW = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}


@dataclass
class Comparison:
    """Every figure for one (manual, reference) pair. Figures are ``None`` when not measurable.

    ``rel_err`` is ``max |manual - reference| / max(|manual|, |reference|, atol)``: symmetric,
    and floored at the tolerance's ``atol`` so that round-off around zero reads as small.
    ``ulp`` counts representable floats between the two values (large across zero).
    """

    status: str
    message: str
    exact: bool | None = None
    approximate: bool | None = None
    maxdiff: float | None = None
    rel_err: float | None = None
    ulp: int | float | None = None
    mismatched: int | None = None
    numel: int | None = None
    worst_index: tuple[int, ...] | None = None
    worst_manual: float | None = None
    worst_reference: float | None = None
    tolerance: Tolerance | None = None
    scale: float | None = None


@dataclass
class Stats:
    """Figures measured over a pair of same-shape tensors (see :func:`measure`)."""

    exact: bool
    mismatched: int
    nonfinite: int
    maxdiff: float
    rel_err: float
    ulp: float
    worst: int
    worst_manual: float
    worst_reference: float
    worst_excess: float = 0.0
    reference_nonfinite: int = 0
    mismatched_where_finite: int = 0
    scale: float | None = None
    tolerance: Tolerance | None = None


def compare(manual: object, reference: torch.Tensor, tolerance: Tolerance) -> Comparison:
    """Compare one hand-written gradient with autograd's (see :func:`compare_all`)."""
    return compare_all([(manual, reference, tolerance)])[0]


def compare_all(pairs: Sequence[tuple[object, torch.Tensor, Tolerance]]) -> list[Comparison]:
    """Compare each ``(manual, reference, tolerance)``; one bad pair never stops the others.

    Shapes are checked before values: a ``(64,)`` gradient for a ``(1, 64)`` tensor is a
    ``shape`` row even though it would broadcast to the right values.
    """
    screened = [screen(manual, dense(reference)) for manual, reference, _ in pairs]
    references = [as_real(dense(reference)) for _, reference, _ in pairs]
    measurable = [i for i, s in enumerate(screened) if s.aligned is not None]
    stats = measure(
        [as_real(screened[i].aligned) for i in measurable],
        [references[i] for i in measurable],
        [pairs[i][2] for i in measurable],
    )
    by_index = dict(zip(measurable, stats, strict=True))
    return [
        _conclude(screened[i], references[i], pairs[i][2], by_index.get(i), pairs[i][1].is_complex())
        for i in range(len(pairs))
    ]


def dense(tensor: torch.Tensor) -> torch.Tensor:
    """A sparse gradient (``nn.Embedding(sparse=True)``, a hand-built COO) as the dense tensor it stands for."""
    return tensor.to_dense() if tensor.layout != torch.strided else tensor


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Dense tensors of one dtype laid end to end in one 1-D tensor, by one call into torch (the
    flattening of DDP's gradient buckets): a Python ``reshape(-1)`` per tensor before ``torch.cat``
    cost about 0.8 us a tensor, most of a flat comparison of a thousand small pairs."""
    return torch._utils._flatten_dense_tensors(tensors)


def as_real(tensor: torch.Tensor) -> torch.Tensor:
    """A complex tensor as its real and imaginary parts (a last dimension of 2), compared part by part."""
    return torch.view_as_real(tensor.resolve_conj()) if tensor.is_complex() else tensor


@dataclass
class Screened:
    """What can be said of a pair before looking at values.

    ``aligned`` is the manual gradient made comparable with the reference (reshaped,
    cast or moved), or ``None`` when no value comparison makes sense.
    """

    status: str | None
    problem: str
    aligned: torch.Tensor | None
    remedy: str = ""


_COMPARABLE = frozenset(
    {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128, torch.bool}
    | {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64}
)
"""Dtypes whose values can be measured; a float8 or quantized gradient has no arithmetic to measure it with."""


def comparable(manual: torch.Tensor) -> bool:
    """A tensor whose values :func:`measure` and the hints can read: not nested or quantized, of a dtype above."""
    return not manual.is_nested and not manual.is_quantized and manual.dtype in _COMPARABLE


def screen(manual: object, reference: torch.Tensor) -> Screened:
    """Check presence, type, shape, dtype and device, in that order."""
    if manual is None:
        return Screened(MISSING, "no gradient was given", None)
    if not isinstance(manual, torch.Tensor):
        return Screened(NOT_TENSOR, f"expected a tensor, got {type(manual).__name__}{_number(manual, reference)}", None)
    if manual.is_nested or manual.is_quantized:
        kind = "nested" if manual.is_nested else "quantized"
        return Screened(
            NOT_TENSOR, f"expected a dense tensor of dtype {_dtype(reference.dtype)}, got a {kind} tensor", None
        )
    if manual.dtype not in _COMPARABLE:
        return Screened(DTYPE, f"expected dtype {_dtype(reference.dtype)}, got {_dtype(manual.dtype)}", None)
    if manual.is_complex() != reference.is_complex():
        return Screened(DTYPE, f"expected dtype {_dtype(reference.dtype)}, got {_dtype(manual.dtype)}", None)
    aligned = dense(manual.detach())
    if aligned.shape != reference.shape:
        expected = f"expected shape {tuple(reference.shape)}, got {tuple(manual.shape)}"
        if aligned.numel() != reference.numel():
            return Screened(SHAPE, expected, None)
        return Screened(SHAPE, expected, aligned.reshape(reference.shape), _reshape_remedy(manual, reference))
    if aligned.device != reference.device:
        problem = f"expected device {reference.device}, got {manual.device}"
        return Screened(DEVICE, problem, _moved(aligned, reference))
    if aligned.dtype != reference.dtype:
        return Screened(
            DTYPE,
            f"expected dtype {_dtype(reference.dtype)}, got {_dtype(manual.dtype)}",
            aligned.to(reference.dtype),
        )
    return Screened(None, "", aligned)


def _number(manual: object, reference: torch.Tensor) -> str:
    """For a plain number given where autograd has one element, the number and autograd's, for a message: the
    student sees whether only the type is wrong."""
    if not isinstance(manual, (int, float)) or isinstance(manual, bool) or reference.numel() != 1:
        return ""
    try:
        value = reference.detach().reshape(()).cpu().item()
    except (RuntimeError, NotImplementedError):  # a meta tensor has no value to show
        return ""
    given = repr(manual) if len(repr(manual)) <= 24 else f"{repr(manual)[:21]}..."
    shown = f"{value:.6g}" if isinstance(value, float) else str(value)
    return f" {given} (autograd's value: {shown}): make it a tensor with torch.tensor"


def _reshape_remedy(manual: torch.Tensor, reference: torch.Tensor) -> str:
    """How to fix a gradient with the right elements in the wrong shape: keepdim or squeeze only where the two
    shapes differ by dimensions of size 1 (``demb = dembcat``, (32, 30) for (32, 3, 10), was told keepdim=True)."""
    if manual.dim() == reference.dim() or not kept_or_dropped(manual.shape, reference.shape):
        return f".view{tuple(reference.shape)}"
    if manual.dim() < reference.dim():
        return "use keepdim=True"
    return "drop the kept dimension: keepdim=False or .squeeze()"


def kept_or_dropped(shape: Sequence[int], expected: Sequence[int]) -> bool:
    """The two shapes are the same once their dimensions of size 1 are taken out: what keepdim or squeeze fixes."""
    return [size for size in shape if size != 1] == [size for size in expected if size != 1]


def _moved(manual: torch.Tensor, reference: torch.Tensor) -> torch.Tensor | None:
    """``manual`` on the reference's device and dtype, or ``None`` when it cannot be copied there (meta)."""
    try:
        return manual.to(device=reference.device, dtype=reference.dtype)
    except (RuntimeError, NotImplementedError):
        return None


def measure(
    manuals: Sequence[torch.Tensor], references: Sequence[torch.Tensor], tolerances: Sequence[Tolerance]
) -> list[Stats]:
    """Measure many same-shape pairs, each under its own tolerance, batching small ones into one
    flat pass per dtype and device (segmented reductions); a pair larger than :data:`CHUNK` is
    walked in chunks."""
    results: dict[int, Stats] = {}
    groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for i, reference in enumerate(references):
        groups.setdefault((reference.dtype, reference.device), []).append(i)
    for indices in groups.values():
        for batch in _batches(indices, references):
            results.update(_measure_batch(batch, manuals, references, tolerances))
    return [results[i] for i in range(len(references))]


def _batches(indices: list[int], references: Sequence[torch.Tensor]) -> list[list[int]]:
    """Group pairs so that each batch holds at most :data:`CHUNK` elements, or one large pair."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i in indices:
        numel = references[i].numel()
        if current and size + numel > CHUNK:
            batches.append(current)
            current, size = [], 0
        current.append(i)
        size += numel
    if current:
        batches.append(current)
    return batches


def _measure_batch(
    batch: list[int],
    manuals: Sequence[torch.Tensor],
    references: Sequence[torch.Tensor],
    tolerances: Sequence[Tolerance],
) -> dict[int, Stats]:
    """Measure one batch: concatenated when small, chunk by chunk when one pair is large (its
    scale, for a scale-aware tolerance, taken over the whole tensor first)."""
    empty = {
        i: Stats(True, 0, 0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, tolerance=tolerances[i].at_scale(1.0))
        for i in batch
        if references[i].numel() == 0
    }
    batch = [i for i in batch if i not in empty]
    if len(batch) == 1 and references[batch[0]].numel() <= CHUNK:  # one pass measures its own scale too
        i = batch[0]
        return empty | {i: _measure_flat(manuals[i].reshape(-1), references[i].reshape(-1), [tolerances[i]], 0)[0]}
    if len(batch) == 1:
        i = batch[0]
        a, b = manuals[i].reshape(-1), references[i].reshape(-1)
        scale = _largest_finite(b) if tolerances[i].scaled else None
        tolerance = tolerances[i].at_scale(scale or 0.0)
        parts = [
            _measure_flat(a[s : s + CHUNK], b[s : s + CHUNK], [tolerance], s)[0] for s in range(0, a.numel(), CHUNK)
        ]
        return empty | {i: _merge(parts, scale)}
    if not batch:
        return empty
    a = flat([manuals[i] for i in batch])
    b = flat([references[i] for i in batch])
    counts = [references[i].numel() for i in batch]
    return empty | dict(zip(batch, _measure_flat(a, b, [tolerances[i] for i in batch], 0, counts), strict=True))


def _largest_finite(values: torch.Tensor) -> float:
    """The largest finite magnitude of a flat tensor, walked in chunks (0 when there is none)."""
    chunks = (values[s : s + CHUNK].abs() for s in range(0, values.numel(), CHUNK))  # exact in any float dtype
    return max(float(torch.nan_to_num(chunk, nan=0.0, posinf=0.0).max()) for chunk in chunks)


def _measure_flat(
    a: torch.Tensor, b: torch.Tensor, tolerances: Sequence[Tolerance], offset: int, counts: Sequence[int] | None = None
) -> list[Stats]:
    """Every figure for the consecutive segments of flat ``a`` and ``b`` (one segment unless ``counts``),
    each under its own tolerance (a scale-aware one at the segment's own scale).

    Each figure is an elementwise pass and one segmented reduction; ``offset`` is added
    to the worst positions, so the chunks of one tensor report indices into the whole.
    """
    segments = _Segments(counts, a.device)
    ia, ib = a.view(_INT_VIEW[a.element_size()]), b.view(_INT_VIEW[b.element_size()])
    af, bf = a.to(torch.float64, copy=True), b.to(torch.float64, copy=True)  # owned: reused in place below
    diff = af - bf
    finite, manual_finite = _finite(a, b, diff)
    all_finite = finite is None or bool(finite.all())
    both_finite = all_finite and (manual_finite is None or bool(manual_finite.all()))
    if not both_finite:
        diff.masked_fill_(af == bf, 0.0)  # the same infinity on both sides differs by NaN, not by nothing
    diff.abs_()
    b_abs = bf.abs_()  # af and bf are reused in place from here: each float64 temporary is page-faulted in anew
    scales: list[float | None] = [None] * len(segments.starts)
    if any(t.scaled for t in tolerances):
        measured = segments.max(b_abs if all_finite else b_abs.where(finite, 0.0)).reshape(-1).tolist()
        scales = [scale if t.scaled else None for t, scale in zip(tolerances, measured, strict=True)]
    tolerances = [t.at_scale(scale or 0.0) for t, scale in zip(tolerances, scales, strict=True)]
    rtol, atol = segments.spread([t.rtol for t in tolerances]), segments.spread([t.atol for t in tolerances])
    denominator = torch.maximum(af.abs_(), b_abs, out=af)
    _floor_at_tiny(denominator, atol)
    excess = b_abs.mul_(rtol).add_(atol).neg_().add_(diff)  # diff - (|b| rtol + atol), rounded step by step as written
    worst, largest = segments.argmax(excess if both_finite else torch.nan_to_num(excess, nan=math.inf))
    passes = both_finite and largest is not None and largest <= 0  # nothing over its bound: none to count
    mismatch = (excess <= 0).logical_not_() if not both_finite else None  # NaN differences mismatch
    columns = [
        segments.differ(ia, ib),
        segments.max(_ulp_distance(ia, ib) if both_finite else _finite_ulps(ia, ib, finite, manual_finite)),
        segments.max(torch.div(diff, denominator, out=denominator)),
        segments.max(diff),
        segments.zeros() if passes else segments.sum(excess > 0 if mismatch is None else mismatch),
        segments.sum(finite & ~manual_finite) if not both_finite else segments.zeros(),
        worst.double(),
        a[worst].double(),
        b[worst].double(),
        excess[worst],
    ]
    if not all_finite:
        columns += [segments.sum(mismatch & finite), segments.sum(~finite)]
    table = segments.table(columns)
    return [
        Stats(
            exact=row[0] == 0,
            ulp=row[1],
            rel_err=row[2],
            maxdiff=row[3],
            mismatched=int(row[4]),
            nonfinite=int(row[5]),
            worst=int(row[6]) - segments.starts[k] + offset,
            worst_manual=row[7],
            worst_reference=row[8],
            worst_excess=row[9],
            mismatched_where_finite=int(row[10]) if not all_finite else int(row[4]),
            reference_nonfinite=int(row[11]) if not all_finite else 0,
            scale=scales[k],
            tolerance=tolerances[k],
        )
        for k, row in enumerate(table)
    ]


def _finite(a: torch.Tensor, b: torch.Tensor, diff: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Where ``b`` and ``a`` are finite, or (None, None) when both are everywhere: one sum of their difference
    says so (NaN and infinity propagate through it; a float64 overflow only takes the longer way)."""
    if math.isfinite(float(diff.sum())):
        return None, None
    return torch.isfinite(b), torch.isfinite(a)


class _Segments:
    """Reductions over consecutive segments of a flat tensor (the whole tensor when ``counts`` is None)."""

    def __init__(self, counts: Sequence[int] | None, device: torch.device) -> None:
        self.starts = [0] if counts is None else [0, *itertools.accumulate(counts[:-1])]
        self.lengths = None if counts is None else torch.tensor(counts, device=device)
        self.device = device

    def spread(self, values: Sequence[float]) -> float | torch.Tensor:
        """One value per segment: a scalar when they are all equal, else spread over the elements."""
        if len(set(values)) == 1:
            return values[0]
        return torch.tensor(values, dtype=torch.float64, device=self.device).repeat_interleave(self.lengths)

    def max(self, values: torch.Tensor) -> torch.Tensor:
        """Each segment's largest value, as float64 (a whole tensor's: one value of its own dtype, 0-d)."""
        if self.lengths is None:
            return values.max()
        return torch.segment_reduce(values.double(), "max", lengths=self.lengths, unsafe=True)

    def zeros(self) -> torch.Tensor | float:
        """A zero for each segment: the count of a condition that holds nowhere."""
        if self.lengths is None:
            return 0.0
        return torch.zeros(len(self.starts), dtype=torch.float64, device=self.device)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Each segment's sum (a count, for a bool tensor), as float64 (a whole tensor's: 0-d, in its sum's dtype)."""
        if self.lengths is None:
            return values.sum()
        return torch.segment_reduce(values.double(), "sum", lengths=self.lengths, unsafe=True)

    def differ(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | float:
        """Whether each segment of ``a`` and ``b`` differs anywhere (a count; 0 or 1 for a whole tensor, which
        ``torch.equal`` answers in one pass with no temporary)."""
        if self.lengths is None:
            return float(not torch.equal(a, b))
        return self.sum(a != b)

    def table(self, columns: Sequence[torch.Tensor | float]) -> list[list[float]]:
        """The figures as one row per segment. A whole tensor's on the CPU are read one by one (a number each, or
        a 0-d tensor): stacking ten scalars into one table cost more than reading them, where one read per figure
        on a GPU would wait for it ten times."""
        if self.lengths is None and self.device.type == "cpu":
            return [[float(column) for column in columns]]
        stacked = [torch.as_tensor(c, dtype=torch.float64, device=self.device) for c in columns]
        return torch.stack(stacked, dim=-1).reshape(len(self.starts), -1).tolist()

    def argmax(self, values: torch.Tensor) -> tuple[torch.Tensor, float | None]:
        """Flat position of each segment's first largest value (0-d for a whole tensor), and a whole tensor's
        largest value (None for segments). ``max(0)`` finds both in one pass, 3x faster than ``argmax``."""
        if self.lengths is None:
            largest, position = values.max(0)
            return position, float(largest)
        segment_max = self.max(values)
        largest = segment_max.repeat_interleave(self.lengths)
        hits = values == largest
        if bool(segment_max.isnan().any()):  # NaN is the largest, as argmax has it
            hits = torch.where(largest.isnan(), values.isnan(), hits)
        hits = hits.nonzero().squeeze(1)
        starts = torch.tensor(self.starts, device=values.device)
        return hits[torch.searchsorted(hits, starts)], None


def _floor_at_tiny(denominator: torch.Tensor, atol: float | torch.Tensor) -> None:
    """Floor the relative error's denominator, in place, at ``atol``, never below the smallest float64 (NaN stays)."""
    tiny = torch.finfo(torch.float64).tiny
    if isinstance(atol, torch.Tensor):
        torch.maximum(denominator, atol.clamp_min(tiny), out=denominator)
    else:
        denominator.clamp_min_(max(atol, tiny))


def _ulp_distance(ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """Units in the last place between floats given as their integer views.

    Same sign: the integer views are ordered like the floats, so the distance is their
    difference (in the views' own width: it cannot overflow). Opposite signs (rare: measured
    only when present): the distance through zero, the sum of the magnitudes, in float64,
    where that sum cannot overflow.
    """
    signs = ia ^ ib  # negative where the sign bits differ
    if not bool(signs.min() < 0):
        return (ia - ib).abs_()
    opposite = signs < 0
    x, y = ia.long(), ib.long()
    magnitude = torch.iinfo(ia.dtype).max
    through_zero = (x & magnitude).double() + (y & magnitude).double()
    return (x - y).abs_().double().where(~opposite, through_zero)


def _finite_ulps(ia: torch.Tensor, ib: torch.Tensor, finite: torch.Tensor, manual_finite: torch.Tensor) -> torch.Tensor:
    """:func:`_ulp_distance` where both values are finite (or the same bits: one infinity on both sides), NaN
    elsewhere: the bit distance between a NaN and a number (2143289344 for float32) counts nothing."""
    counted = (finite & manual_finite) | (ia == ib)
    return _ulp_distance(ia, ib).double().masked_fill_(~counted, math.nan)


def _merge(parts: Sequence[Stats], scale: float | None) -> Stats:
    """Join the figures of consecutive chunks of one tensor (all under one tolerance, at ``scale``);
    NaN differences count as the worst."""
    worst = max(parts, key=lambda p: (_nan_first(p.worst_excess), -p.worst))
    return Stats(
        exact=all(p.exact for p in parts),
        mismatched=sum(p.mismatched for p in parts),
        nonfinite=sum(p.nonfinite for p in parts),
        maxdiff=max((p.maxdiff for p in parts), key=_nan_first),
        rel_err=max(p.rel_err for p in parts),
        ulp=max(p.ulp for p in parts),
        worst=worst.worst,
        worst_manual=worst.worst_manual,
        worst_reference=worst.worst_reference,
        worst_excess=worst.worst_excess,
        reference_nonfinite=sum(p.reference_nonfinite for p in parts),
        mismatched_where_finite=sum(p.mismatched_where_finite for p in parts),
        scale=scale,
        tolerance=parts[0].tolerance,
    )


def _nan_first(value: float) -> tuple[bool, float]:
    """Sort key: NaN above every number."""
    return (math.isnan(value), 0.0 if math.isnan(value) else value)


def _conclude(
    screened: Screened, reference: torch.Tensor, tolerance: Tolerance, stats: Stats | None, parts: bool = False
) -> Comparison:
    """Join the screening and the figures into a status and the row's one message. ``parts``: ``reference`` is a
    complex tensor seen as its real and imaginary parts (a last dimension of 2), which the message names."""
    if stats is None:
        return Comparison(screened.status or MISSING, screened.problem, exact=False, approximate=False)
    tolerance = stats.tolerance or tolerance
    approximate = stats.mismatched == 0
    status = screened.status or (OK if approximate else NONFINITE if stats.nonfinite else MISMATCH)
    if status == MISMATCH and stats.reference_nonfinite and not stats.mismatched_where_finite:
        status = GRAPH
    worst = _unravel(stats.worst, tuple(reference.shape))
    return Comparison(
        status=status,
        message=_message(
            status, screened.problem, screened.remedy, stats, approximate, worst, reference.numel(), parts
        ),
        exact=stats.exact and screened.status is None,
        approximate=approximate and screened.status is None,
        maxdiff=stats.maxdiff,
        rel_err=stats.rel_err,
        ulp=int(stats.ulp) if stats.ulp < 2**63 else stats.ulp,
        mismatched=stats.mismatched,
        numel=reference.numel(),
        worst_index=worst[:-1] if parts else worst,
        worst_manual=stats.worst_manual,
        worst_reference=stats.worst_reference,
        tolerance=tolerance,
        scale=stats.scale,
    )


def _message(
    status: str,
    problem: str,
    remedy: str,
    stats: Stats,
    approximate: bool,
    worst: tuple[int, ...],
    numel: int,
    parts: bool = False,
) -> str:
    if status == OK:
        return ""
    if status == SHAPE:
        verdict = f"values match after a reshape ({remedy})" if approximate else "values differ after a reshape"
        return f"{problem}; same number of elements, {verdict}"
    if problem:
        verdict = "values match once converted" if approximate else "values differ too"
        return f"{problem}; {verdict}"
    autograd_nonfinite = f"autograd itself is non-finite (NaN or Inf) at {stats.reference_nonfinite}/{numel} elements"
    if status == GRAPH:
        return f"{autograd_nonfinite}: the forward's values or derivative there are not finite, nothing to check"
    at = f"{worst[:-1]}, its {('real', 'imaginary')[worst[-1]]} part" if parts else f"{worst}"
    where = f"worst at index {at}: manual {stats.worst_manual:.6g} vs autograd {stats.worst_reference:.6g}"
    mismatched = f"{stats.mismatched}/{numel} {'real and imaginary parts' if parts else 'elements'} mismatched"
    also = f"; {autograd_nonfinite}" if stats.reference_nonfinite else ""
    if status == NONFINITE:
        return (
            f"{stats.nonfinite}/{numel} elements are NaN or Inf where autograd is finite; {mismatched}; {where}{also}"
        )
    return f"{mismatched}; {where}{also}"


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size) if size else (flat, 0)
        index.append(rest)
    return tuple(reversed(index))


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
