"""Hypotheses about a wrong gradient, each a few tensor ops that test it against autograd's.

Every test takes the :class:`Evidence` of one failing variable and returns the hint
when the hypothesis holds numerically, "" otherwise. :data:`BY_SHAPE` is for a manual
gradient of the wrong shape, :data:`BY_VALUE` for one of the right shape; both are in
the order they are tried, most specific first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations, permutations

import torch

from .capture import Capture, Variable
from .compare import dense, kept_or_dropped
from .consumers import code_of, contribution, gather_index

MAX_PERMUTED_DIMS = 5
"""Dimension orders are searched for gradients of at most this many dimensions (120 orders)."""
MAX_CONSUMERS = 4
"""Missing branches are searched over every subset of at most this many consumers."""


@dataclass
class Evidence:
    """A failing variable's manual and autograd gradients in float64, and the tolerance to test with."""

    variable: Variable
    manual: torch.Tensor
    reference: torch.Tensor
    captured: Capture
    tol: float

    @classmethod
    def of(cls, variable: Variable, grad: torch.Tensor, manual: torch.Tensor, captured: Capture) -> Evidence:
        """Looser than the check's tolerance (8 ulp, at least 1e-5): a hypothesis must hold up to rounding."""
        reference = grad.detach().double()
        eps = torch.finfo(grad.dtype).eps if grad.is_floating_point() else 0.0
        tol = max(8 * eps, 1e-5)
        return cls(variable, manual.detach().to(reference.device, torch.float64), reference, captured, tol)

    def agree(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Elementwise: ``a`` matches ``b`` up to ``tol`` relative to each element and to ``b``'s largest."""
        return (a - b).abs() <= self.tol * (b.abs() + b.abs().max())

    def close(self, a: torch.Tensor, b: torch.Tensor | None = None) -> bool:
        """``a`` matches ``b`` (autograd's gradient by default) everywhere."""
        b = self.reference if b is None else b
        return a.shape == b.shape and bool(self.agree(a, b).all())

    def negligible(self, a: torch.Tensor) -> bool:
        """``a`` is too small, next to autograd's gradient, to be told from rounding."""
        return bool(a.abs().max() <= self.tol * self.reference.abs().max())

    @cached_property
    def n(self) -> int | None:
        """The batch size: the forward's int ``n``, else the most common leading dimension above 1 of its
        intermediates (a parameter's rows are no batch; a batch of 0 or 1 has no Bessel's factor or mean to
        name, and would divide by zero in :func:`_constant`)."""
        n = self.captured.namespace.get("n")
        if isinstance(n, int) and not isinstance(n, bool) and n > 1:
            return n
        namespace = self.captured.namespace
        computed = [t for name in self.captured.variables if getattr(t := namespace.get(name), "grad_fn", None)]
        leading = Counter(t.shape[0] for t in computed if t.ndim >= 2 and t.shape[0] > 1)
        return leading.most_common(1)[0][0] if leading else None


Test = Callable[[Evidence], str]


def reshaped(e: Evidence) -> str:
    """keepdim / squeeze (where the shapes differ by dimensions of size 1), else a view: same number of elements,
    right values once viewed in autograd's shape."""
    m, r = e.manual, e.reference
    if m.numel() != r.numel() or not e.close(m.reshape(r.shape)):
        return ""
    if m.ndim == r.ndim or not kept_or_dropped(m.shape, r.shape):
        return (
            f"right values in the wrong shape {_shape(m)} instead of {_shape(r)}, in the same order: .view{_shape(r)}"
        )
    fix = "keep the reduced dimension (keepdim=True)" if m.ndim < r.ndim else "drop the extra dimension (squeeze)"
    return f"right values in the wrong shape {_shape(m)} instead of {_shape(r)}: {fix} or .view{_shape(r)}"


def permuted(e: Evidence) -> str:
    """Autograd's gradient with its dimensions in another order (a batched transpose, ``(B, C, T)`` for
    ``(B, T, C)``): :func:`transposed` is the two-dimensional case."""
    m, r = e.manual, e.reference
    if m.ndim != r.ndim or not 3 <= m.ndim <= MAX_PERMUTED_DIMS or sorted(m.shape) != sorted(r.shape):
        return ""  # a same-shaped one is tried too: (B, T, T) attention scores transposed per batch
    for order in permutations(range(m.ndim)):
        if tuple(m.shape[i] for i in order) == tuple(r.shape) and e.close(m.permute(order)):
            moved = [i for i, j in enumerate(order) if i != j]
            call = f".transpose({moved[0]}, {moved[1]})" if len(moved) == 2 else f".permute{order}"
            shapes = f"{_shape(m)} vs {_shape(r)}"
            return f"dimensions in another order: the manual gradient's {call} matches autograd ({shapes})"
    return ""


def broadcast_short(e: Evidence) -> str:
    """A smaller gradient that only broadcasts to the variable's shape (``(1, 64)`` for ``(32, 64)``)."""
    m, r = e.manual, e.reference
    if m.numel() >= r.numel() or m.ndim > r.ndim or not _broadcasts(m.shape, r.shape):
        return ""
    lead = r.ndim - m.ndim
    dims = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(m.shape) if size == 1 and r.shape[lead + i] != 1
    )
    shape, target = _shape(m), _shape(r)
    if e.close(m.expand(r.shape)):
        return f"right values, but kept once in shape {shape}: a gradient has its variable's shape; .expand{target}"
    if e.close(m, r.sum(dims, keepdim=True).reshape(m.shape)):
        return (
            f"summed over {'dim' if len(dims) == 1 else 'dims'} {_dims(dims)}: shape {shape} only broadcasts to "
            f"{target}, and a gradient has exactly its variable's shape: drop that sum"
        )
    return f"shape {shape} only broadcasts to {target}: a gradient has exactly its variable's shape {target}"


def all_zeros(e: Evidence) -> str:
    """The manual gradient is all zeros (an initialisation never filled in)."""
    if bool(e.manual.any()) or e.negligible(e.reference):
        return ""
    return "your gradient is all zeros: was it initialised with zeros_like and never filled in?"


def nothing_flows(e: Evidence) -> str:
    """autograd's gradient is exactly zero everywhere and the manual one is not: nothing flows back to this
    variable (a ReLU or mask off on the whole batch, a detach); an offset or factor would misname it."""
    if bool(e.reference.any()) or not bool(e.manual.any()):
        return ""
    return (
        "autograd's gradient is zero everywhere and yours is not: nothing flows back here "
        "(a mask or ReLU that is off on the whole batch, a .detach()?)"
    )


def off_pattern(e: Evidence) -> str:
    """A sparse variable whose manual gradient is right on its pattern and not zero off it: autograd's gradient of a
    sparse tensor (``torch.sparse.mm(W, x)``) keeps only the pattern's entries."""
    value = e.variable.value.detach()
    if value.layout == torch.strided:
        return ""
    coo = (value if value.layout == torch.sparse_coo else value.to_sparse_coo()).coalesce()
    ones = torch.ones(coo.values().shape, dtype=torch.float64, device=coo.device)
    pattern = torch.sparse_coo_tensor(coo.indices(), ones, coo.shape).to_dense().to(e.reference.device) != 0
    m, r = e.manual, e.reference
    if pattern.shape != m.shape or bool(r[~pattern].any()) or not bool(m[~pattern].any()):
        return ""
    if not bool(e.agree(m, r)[pattern].all()):
        return ""
    name = e.variable.name
    return (
        f"right on {name}'s sparsity pattern, not zero off it: autograd's gradient of a sparse tensor keeps only the "
        f"entries it has (.sparse_mask({name}))"
    )


def offset(e: Evidence) -> str:
    """manual ≈ autograd + c for one constant c: an accumulation started from ones, not zeros."""
    difference = e.manual - e.reference
    c = float(difference.mean())
    if e.negligible(torch.tensor(c)) or not e.close(difference, torch.full_like(difference, c)):
        return ""
    start = " (ones_like instead of zeros_like?)" if abs(c - 1) <= 1e-3 else ""
    return f"off by a constant offset: manual ≈ autograd + {c:.4g} everywhere{start}: start accumulating from zeros"


def transposed(e: Evidence) -> str:
    """The manual gradient is autograd's, transposed."""
    m = e.manual
    if m.ndim != 2 or m.shape[::-1] != e.reference.shape or not e.close(m.T):
        return ""
    return f"transposed: the manual gradient's .T matches autograd ({_shape(m)} vs {_shape(e.reference)})"


def missing_sum(e: Evidence) -> str:
    """The manual gradient has the broadcast shape; summing the broadcast dimensions matches."""
    m, r = e.manual, e.reference
    lead = m.ndim - r.ndim
    if lead < 0 or any(rs not in (ms, 1) for rs, ms in zip(r.shape, m.shape[lead:], strict=True)):
        return ""
    kept = tuple(i for i, (rs, ms) in enumerate(zip(r.shape, m.shape[lead:], strict=True)) if rs == 1 and ms != 1)

    def reduce(t: torch.Tensor) -> torch.Tensor:
        t = t.sum(tuple(range(lead))) if lead else t
        return t.sum(kept, keepdim=True) if kept else t

    summed, terms = reduce(m), reduce(m.abs())
    if summed.shape != r.shape or not bool(((summed - r).abs() <= e.tol * (r.abs() + terms.max())).all()):
        return ""  # up to the round-off of the sum itself: b1 before batch norm sums to zero in exact arithmetic
    dims = tuple(range(lead)) + tuple(lead + i for i in kept)
    calls = ([f".sum({_dims(range(lead))})"] if lead else []) + ([f".sum({_dims(kept)}, keepdim=True)"] if kept else [])
    label = "dim" if len(dims) == 1 else "dims"
    return (
        f"missing sum over the broadcast {label} {_dims(dims)}: the manual gradient has the broadcast shape "
        f"{_shape(m)}; {''.join(calls)} matches"
    )


def pasted(e: Evidence) -> str:
    """The manual gradient is autograd's gradient of another variable."""
    others = [
        w.name
        for w in e.captured.variables.values()
        if w.name != e.variable.name
        and w.grad is not None
        and w.grad.shape == e.manual.shape
        and not e.negligible(w.grad)
        and e.close(e.manual, w.grad.detach().double())
    ]
    if not others:
        return ""
    return f"this is the gradient of {' / '.join(others[:2])}, not of {e.variable.name}: pasted under the wrong name?"


def factor(e: Evidence) -> str:
    """manual ≈ k · autograd for one constant k (k = -1: a sign flip); k named when the graph has it."""
    m, r = e.manual, e.reference
    norm = float((r * r).sum())
    if norm == 0.0:
        return ""
    k = float((m * r).sum()) / norm
    if abs(k) <= e.tol or abs(k - 1) <= 1e-3 or not e.close(m, k * r):
        return ""
    if abs(k + 1) <= 1e-3:
        return "sign flipped: manual ≈ -autograd"
    label = _constant(abs(k), e.n)
    sign = "sign flipped and " if k < 0 else ""
    if label is None:
        return f"{sign}off by a constant factor: manual ≈ {k:.4g} × autograd"
    note = ": Bessel's correction?" if label in ("n/(n-1)", "(n-1)/n") else ""
    where = f" (n = {e.n})" if "n" in label else ""
    return f"{sign}off by a factor {label}{where}{note}"


def transposed_square(e: Evidence) -> str:
    """A square gradient that is autograd's transposed."""
    m = e.manual
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not e.close(m.T):
        return ""
    return "transposed: the manual gradient's .T matches autograd"


def missing_branch(e: Evidence) -> str:
    """The variable feeds several lines and the manual gradient leaves out the contribution of some."""
    v, variables = e.variable, e.captured.variables
    if not 2 <= len(v.consumers) <= MAX_CONSUMERS:
        return ""
    consumers = [variables[c] for c in v.consumers if c in variables]
    parts = [contribution(v, c, e.captured) for c in consumers]
    if len(parts) != len(v.consumers) or any(p is None for p in parts):
        return ""
    parts = [p.double() for p in parts]
    if not e.close(sum(parts)):
        return ""
    for size in range(1, len(parts)):
        for missing in combinations(range(len(parts)), size):
            kept = sum(p for i, p in enumerate(parts) if i not in missing)
            if not any(e.negligible(parts[i]) for i in missing) and e.close(e.manual, kept):
                return _branch_hint(v.name, [consumers[i] for i in missing])
    return ""


def scatter(e: Evidence) -> str:
    """An embedding-style gradient (``emb = C[Xb]``) wrong exactly on the rows indexed more than once,
    each holding one of its contributions: an assignment where the scatter must accumulate."""
    v, variables = e.variable, e.captured.variables
    gathers = [
        (c, found) for c in v.consumers if c in variables and (found := gather_index(v, variables[c], e.captured))
    ]
    if v.value.ndim == 0 or len(gathers) != 1:
        return ""
    consumer, (index_name, index) = gathers[0]
    rows = v.value.shape[0]
    flat = index.reshape(-1).to(e.reference.device)
    pieces = variables[consumer].grad
    if flat.numel() == 0 or pieces is None or pieces.numel() != flat.numel() * (v.value.numel() // max(rows, 1)):
        return ""
    if bool((flat < 0).any()) or bool((flat >= rows).any()):
        return ""
    m, r = e.manual.reshape(rows, -1), e.reference.reshape(rows, -1)
    counts = torch.bincount(flat, minlength=rows)
    wrong = ~e.agree(m, r).all(1)
    if not bool(wrong.any()) or bool((counts[wrong] < 2).any()):
        return ""
    alone = e.agree(m[flat], pieces.detach().double().reshape(flat.numel(), -1)).all(1)
    held = torch.zeros(rows, dtype=torch.long, device=flat.device).index_add_(0, flat, alone.long())
    if not bool((held[wrong] > 0).all()):
        return ""
    repeated = int((counts > 1).sum())
    return (
        f"wrong exactly on {int(wrong.sum())}/{repeated} rows of {v.name} that {index_name} indexes more than once, "
        f"each holding one contribution instead of their sum: accumulate (+= per index, or index_add_)"
    )


def kinked(e: Evidence) -> str:
    """Wrong only where the variable sits exactly on a kink of the step consuming it (a ReLU's 0, a clamp's bound):
    there the derivative is a convention, and the hint says autograd's, as the values show it (relu'(0) = 0, a
    clamp passes its bounds, a hardtanh does not)."""
    m, r, value = e.manual, e.reference, dense(e.variable.value)
    if value.shape != m.shape or not value.is_floating_point():
        return ""
    wrong = ~e.agree(m, r)
    points = torch.unique(value.detach().to(r.device, torch.float64)[wrong]).tolist()
    found = next(((c, k) for c in e.variable.consumers if (k := _kinks(e.captured.namespace.get(c)))), None)
    if not points or found is None or not set(points) <= found[1]:
        return ""
    consumer = e.captured.variables.get(found[0])
    step = f"`{code_of(consumer.source)}` (line {consumer.line})" if consumer is not None else found[0]
    where = ", ".join(f"{p:g}" for p in points)
    if not bool(r[wrong].any()):
        convention = "autograd's gradient there is 0 (relu'(0) = 0, sign(0) = 0: compare strictly, > rather than >=)"
    elif not bool(m[wrong].any()):
        convention = "autograd passes the gradient there (a clamp keeps its bounds: compare with >= and <=)"
    else:
        convention = "autograd takes another one-sided derivative there"
    count = int(wrong.sum())
    return (
        f"wrong only at {count} element{'s' if count > 1 else ''} where {e.variable.name} is exactly {where}, a kink "
        f"of {step}: {convention}"
    )


def _kinks(tensor: object) -> frozenset[float]:
    """The inputs at which the step that made ``tensor`` has a kink (none when it is not such a step)."""
    node = getattr(tensor, "grad_fn", None)
    kind = type(node).__name__
    if kind.startswith(("ReluBackward", "AbsBackward", "LeakyReluBackward")):
        return frozenset({0.0})
    names = {"Clamp": ("_saved_min", "_saved_max"), "Hardtanh": ("_saved_min_val", "_saved_max_val")}
    names["Threshold"] = ("_saved_threshold",)
    attributes = next((a for prefix, a in names.items() if kind.startswith(prefix)), ())
    return frozenset(b for b in (_saved_number(node, a) for a in attributes) if b is not None)


def _saved_number(node: object, attribute: str) -> float | None:
    """A number autograd's ``node`` saved (a clamp's scalar bound), or None: a tensor bound (``clamp(t0, t1)``) is
    freed once the backward ran, and reading it raises."""
    try:
        value = getattr(node, attribute, None)
    except RuntimeError:
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def tied(e: Evidence) -> str:
    """Wrong only where the variable's forward values tie, the gradient shared out another way within each tie:
    a max, amax or max-pool over equal elements has many right subgradients, and autograd's is one convention
    (``amax`` and a full ``max()`` split it evenly, ``max(dim)`` gives it all to the index it returns)."""
    m, r, value = e.manual, e.reference, dense(e.variable.value)
    if value.shape != m.shape or not value.is_floating_point() or not _picked_among(e):
        return ""
    wrong = ~e.agree(m, r)
    values = value.detach().to(r.device, torch.float64)[wrong]
    if not bool(wrong.any()) or not bool(torch.isfinite(values).all()):
        return ""
    ties, group, sizes = torch.unique(values, return_inverse=True, return_counts=True)
    if bool((sizes < 2).any()):
        return ""
    differences, shares = (m - r)[wrong], r[wrong]
    net = torch.zeros(len(ties), dtype=torch.float64, device=r.device).index_add_(0, group, differences)
    moved = torch.zeros_like(net).index_add_(0, group, differences.abs())
    total = torch.zeros_like(net).index_add_(0, group, shares)[group]
    even = bool(e.agree(shares, total / sizes[group]).all())
    if not bool((net.abs() <= e.tol * (moved + r.abs().max())).all()):
        whole = even and bool(e.agree(m[wrong], total).all())
        return (
            f"each of the {int(wrong.sum())} elements where {e.variable.name} has tied values holds the tie's whole "
            f"gradient: autograd splits it evenly between them (divide by the number tied)"
            if whole
            else ""
        )
    convention = "splits it evenly between them" if even else "gives it all to one (the index max(dim) or a pool picks)"
    return (
        f"wrong only at {int(wrong.sum())} elements where {e.variable.name} has tied values, with the same total "
        f"gradient over each tie: any split between tied maxima is a valid subgradient, but autograd {convention}; "
        f"share it the same way"
    )


_PICKS = ("Max", "Amax", "Min", "Amin", "AdaptiveMax", "Median", "Nanmedian", "Kthvalue", "Topk", "Sort", "Mode")
"""autograd nodes of steps that pick among their input's values (max, min, their pools, sorts): where values tie,
which one gets the gradient is a convention."""
_PICK_DEPTH = 4
"""How many autograd nodes below a consumer's own are searched for such a step (``x.max(1).values * 2``)."""


def _picked_among(e: Evidence) -> bool:
    """Some step consuming the variable picks among its values, within :data:`_PICK_DEPTH` autograd nodes of the
    consumer: ties matter only there (a wrong gradient of ``x * [[1], [2]]`` on repeated values was told any split
    between tied maxima is right)."""
    nodes = [getattr(e.captured.namespace.get(name), "grad_fn", None) for name in e.variable.consumers]
    for _ in range(_PICK_DEPTH):
        nodes = [node for node in nodes if node is not None]
        if any(type(node).__name__.startswith(_PICKS) for node in nodes):
            return True
        nodes = [following for node in nodes for following, _ in node.next_functions]
    return False


def some_rows(e: Evidence) -> str:
    """Wrong only in a few rows (or columns, or elements of a vector): say which, with counts."""
    m, r = e.manual, e.reference
    if m.ndim == 0:
        return ""
    wrong = ~e.agree(m, r).reshape(m.shape[0], -1)
    kind = "elements" if m.ndim == 1 else "rows"
    parts = [_few(wrong.any(1), kind)]
    if m.ndim == 2:
        parts.append(_few(wrong.any(0), "columns"))
    parts = [p for p in parts if p]
    return f"wrong only in {' and '.join(parts)}; the rest match" if parts else ""


BY_SHAPE: Sequence[Test] = (reshaped, transposed, permuted, missing_sum, broadcast_short, pasted)
BY_VALUE: Sequence[Test] = (
    all_zeros,
    nothing_flows,
    off_pattern,
    factor,
    offset,
    transposed_square,
    permuted,
    missing_branch,
    scatter,
    pasted,
    tied,
    kinked,
    some_rows,
)


def _constant(k: float, n: int | None) -> str | None:
    """The name of the graph constant ``k`` is, if any (to 0.1%)."""
    named = {"2": 2.0, "1/2": 0.5}
    if n is not None:
        named = {
            "n": n,
            "1/n": 1 / n,
            "n/(n-1)": n / (n - 1),
            "(n-1)/n": (n - 1) / n,
            "n-1": n - 1,
            "1/(n-1)": 1 / (n - 1),
            **named,
        }
    return next((label for label, c in named.items() if abs(k - c) <= 1e-3 * c), None)


def _branch_hint(name: str, missing: list[Variable]) -> str:
    uses = " and ".join(f"`{code_of(c.source)}` (line {c.line})" for c in missing)
    return f"{name} is also used in {uses}; add {'that branch' if len(missing) == 1 else 'those branches'}"


def _few(wrong: torch.Tensor, kind: str) -> str:
    """``3/32 rows (0, 5, 9)`` when at most half of them are wrong, else ""."""
    count, total = int(wrong.sum()), wrong.numel()
    if count == 0 or count > total // 2:
        return ""
    positions = wrong.nonzero().flatten().tolist()
    listed = ", ".join(map(str, positions[:8])) + (", ..." if count > 8 else "")
    return f"{count}/{total} {kind} ({listed})"


def _broadcasts(small: Sequence[int], shape: Sequence[int]) -> bool:
    """``small`` broadcasts to ``shape`` (aligned from the right, each size equal or 1)."""
    return all(s in (1, t) for s, t in zip(reversed(small), reversed(shape), strict=False))


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def _dims(dims: Sequence[int]) -> str:
    dims = tuple(dims)
    return str(dims[0]) if len(dims) == 1 else str(dims)
