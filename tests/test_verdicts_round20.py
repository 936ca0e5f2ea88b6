"""Verdicts on hand-derived models with unusual but real inputs (round 20): statuses and hints a user can trust."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from gradcheck_kit import Graph, check

TIED = torch.tensor([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, 1.0, 0.0]])


def tied_graph(reduction: str) -> Graph:
    """``m = x.amax(1)`` or ``x.max(1).values`` over rows whose maximum is tied (3, 3 and 2, 2)."""

    def inputs():
        return {"x": TIED.clone().requires_grad_()}

    def forward_tied(x):
        m = x.amax(1) if reduction == "amax" else x.max(1).values
        loss = (m * torch.tensor([1.0, 2.0])).sum()
        return loss

    return Graph(f"tied_{reduction}", forward_tied, inputs)


@pytest.mark.parametrize(
    ("reduction", "pick", "convention"),
    [("amax", "argmax", "splits it evenly"), ("max", "[2, 1]", "gives it all to one"), ("amax", "[2, 1]", "evenly")],
)
def test_a_gradient_sharing_a_tied_maximum_another_way_is_hinted_as_a_tie(reduction, pick, convention):
    """autograd's amax splits a tied maximum's gradient, max(dim) picks one index; a manual gradient giving it all
    to another tied element is a valid subgradient that is not autograd's: the hint says so, not 'wrong rows'."""
    index = "x.argmax(1)" if pick == "argmax" else f"torch.tensor({pick})"
    backward = f"dm = torch.tensor([1.0, 2.0])\ndx = torch.zeros_like(x)\ndx[torch.arange(2), {index}] = dm"
    row = check(tied_graph(reduction), backward)["x"]
    assert row.status == "mismatch", row
    assert "tied values" in row.hint and convention in row.hint, row.hint


def test_a_max_pool_gradient_on_the_other_tied_element_is_hinted_as_a_tie():
    """A max-pool window over two equal values: autograd gives the gradient to the one it picked."""

    def inputs():
        return {"x": torch.tensor([[1.0, 1.0, 0.0, 2.0, 2.0, 2.0]]).requires_grad_()}

    def forward_pool(x):
        p = torch.nn.functional.max_pool1d(x[None], 2, 2)[0]
        loss = (p * x.new_tensor([[1.0, 2.0, 3.0]])).sum()
        return loss

    backward = "dp = x.new_tensor([[1.0, 2.0, 3.0]])\ndx = torch.zeros_like(x)\ndx[0, [1, 3, 5]] = dp[0]"
    row = check(Graph("pool", forward_pool, inputs), backward)["x"]
    assert row.status == "mismatch" and "tied values" in row.hint and "pool" in row.hint, row.hint


def test_a_gradient_giving_each_tied_maximum_the_whole_of_it_is_hinted_as_such():
    """``amax`` over a row tied at 3, 3: a mask of the maxima times the upstream gradient gives each tied element
    all of it (autograd splits it); the hint said only 'wrong only in 1/2 rows'."""

    def inputs():
        return {"x": torch.tensor([[3.0, 3.0, 1.0], [1.0, 2.0, 0.0]]).requires_grad_()}

    def forward_one_tie(x):
        m = x.amax(1)
        loss = (m * x.new_tensor([1.0, 2.0])).sum()
        return loss

    backward = "dm = x.new_tensor([1.0, 2.0])\ndx = (x == x.amax(1, keepdim=True)).float() * dm[:, None]"
    row = check(Graph("one_tie", forward_one_tie, inputs), backward)["x"]
    assert row.status == "mismatch" and "holds the tie's whole gradient" in row.hint, row.hint


def test_a_wrong_gradient_at_a_tie_that_changes_the_total_is_not_hinted_as_a_tie():
    """Doubling the gradient of one tied element changes the tie's total: a mistake, not a convention."""
    backward = "dm = torch.tensor([1.0, 2.0])\nmask = (x == x.amax(1, keepdim=True)).float()\ndx = mask * dm[:, None]"
    backward += "\ndx = dx / mask.sum(1, keepdim=True)\ndx[0, 1] *= 2"
    row = check(tied_graph("amax"), backward)["x"]
    assert row.status == "mismatch" and "tied" not in row.hint, row


def tiny_inputs_graph(size: float = 1e-30) -> Graph:
    """``h = x @ w`` on inputs of ``size``: ``dw`` is ``size**2``, genuinely small, and float32 underflows it (1e-60
    to 0; 1e-44, from inputs of 1e-22, to a few subnormal steps)."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(4, 3, generator=generator) * size
        return {"x": x, "w": torch.randn(3, 3, generator=generator).requires_grad_()}

    def forward_tiny(x, w):
        h = x @ w
        loss = (h * h).sum()
        return loss

    return Graph("tiny_inputs", forward_tiny, inputs)


@pytest.mark.parametrize(("mistake", "wrong"), [("transposed", "(x.T @ dh).T"), ("1% off", "x.T @ dh * 1.01")])
def test_a_gradient_float32_underflows_is_not_forgiven_as_round_off_in_float64(mistake, wrong):
    """In float64 a wrong ``dw`` of 1e-60 was judged at the round-off floor of the gradient flowing in (1e-43): the
    float32 run meant to refute that floor underflowed to zeros, which looked like round-off. The right one passes."""
    graph = tiny_inputs_graph()
    row = check(graph, f"dh = 2 * h\ndw = {wrong}", dtype="float64")["w"]
    assert row.status == "mismatch", (mistake, row.message)
    assert check(graph, "dh = 2 * h\ndw = x.T @ dh", dtype="float64").passed


def overflowing_graph() -> Graph:
    """``h = x @ w`` on inputs of about 300: ``dw`` is about 6e5, past float16's largest 65504, for autograd too."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(8, 4, generator=generator) * 300
        return {"x": x, "w": torch.randn(4, 4, generator=generator).requires_grad_()}

    def forward_overflow(x, w):
        h = x @ w
        loss = (h * h).sum()
        return loss

    return Graph("overflow", forward_overflow, inputs)


def test_a_gradient_that_overflows_float16_for_autograd_too_is_not_blamed_on_the_backward():
    """The rule judged the right float16 ``dw`` (inf where autograd is inf) against the finite float64 gold: 'NaN or
    Inf where autograd is finite', a lie; it is autograd's own overflow, as the cell's comparison says. A mistake on
    the one finite element still fails on its value."""
    graph = overflowing_graph()
    right = check(graph, "dh = 2 * h\ndw = x.T @ dh", dtype="float16")["w"]
    assert right.status == "graph" and "autograd itself is non-finite" in right.message, right.message
    assert "where autograd is finite" not in right.message
    wrong = check(graph, "dh = 2 * h\ndw = 2 * (x.T @ dh)", dtype="float16")["w"]
    assert wrong.status == "mismatch", wrong.message


def _decayed(x, w, t):
    h = x @ w
    loss = ((h - t) ** 2).mean() + 0.1 * (w**2).sum()
    return loss


def _decay_inputs():
    """Two raw features of about 100 and one of 0.01: on the small one's row of ``dw`` the decay term is most of it."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, generator=g) * torch.tensor([100.0, 100.0, 0.01])
    return {"x": x, "w": (torch.randn(3, 4, generator=g) * 0.01).requires_grad_(), "t": torch.randn(64, 4, generator=g)}


@pytest.mark.xfail(
    strict=True,
    reason="a float64 confirmation run that raised decides nothing: judged as it stood, a right backward whose assert "
    "sat before its last line failed (test_a_float64_run_raising_midway_decides_nothing)",
)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_dtype_assert_at_the_end_of_the_backward_does_not_escape_the_float64_confirmation(dtype):
    """``assert dw.dtype == torch.float16`` after every gradient holds in the cell and raises in the float64 run:
    that run is thrown away, so a forgotten weight decay the rule's bound hides passes unconfirmed (a known gap)."""
    graph = Graph("decay", _decayed, _decay_inputs)
    forgot = f"dh = 2 * (h - t) / h.numel()\ndw = x.T @ dh\nassert dw.dtype == torch.{dtype}\n"
    assert check(graph, forgot, dtype=dtype)["w"].status == "mismatch"
    assert check(graph, forgot.replace("x.T @ dh", "x.T @ dh + 0.2 * w"), dtype=dtype).passed


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_float64_run_raising_midway_decides_nothing(dtype):
    """A right backward whose dtype assert sits before its last line raises in the float64 run with ``dw`` half
    built: judged as it stood (cd1217d), it failed, 'a mistake in the formula'. Such a run decides nothing."""
    graph = Graph("decay", _decayed, _decay_inputs)
    right = f"dh = 2 * (h - t) / h.numel()\ndw = x.T @ dh\nassert dw.dtype == torch.{dtype}\ndw = dw + 0.2 * w\n"
    assert check(graph, right, dtype=dtype).passed


def kink_graph(step: str) -> Graph:
    """Integer-valued inputs: ``h = x @ W`` is exactly 0, -1 or 1 at some elements, on a ReLU's, clamp's or
    hardtanh's kink."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        x = torch.randint(-2, 3, (8, 4), generator=generator).float()
        return {"x": x, "W": torch.randint(-2, 3, (4, 4), generator=generator).float().requires_grad_()}

    def forward_kink(x, W):
        h = x @ W
        steps = {"relu": h.relu, "clamp": lambda: h.clamp(-1.0, 1.0), "hardtanh": lambda: F.hardtanh(h)}
        c = steps[step]()
        loss = (c * torch.arange(1.0, 5.0)).sum()
        return loss

    return Graph(f"kink_{step}", forward_kink, inputs)


@pytest.mark.parametrize(
    ("step", "mask", "convention"),
    [
        ("relu", "(h >= 0)", "compare strictly"),
        ("clamp", "((h > -1) & (h < 1))", "compare with >= and <="),
        ("hardtanh", "((h >= -1) & (h <= 1))", "compare strictly"),
    ],
)
def test_a_mask_that_takes_the_other_side_of_a_kink_is_hinted_as_such(step, mask, convention):
    """``h >= 0`` for a ReLU (autograd: relu'(0) = 0), a clamp's bounds left out (autograd passes them) or a
    hardtanh's kept (autograd does not): a mismatch exactly where ``h`` sits on the kink, whose hint said only 'wrong
    only in 3/8 rows', and then told a hardtanh's inclusive mask to be inclusive."""
    backward = f"dc = torch.arange(1.0, 5.0).expand(8, 4)\ndh = dc * {mask}\ndW = x.T @ dh"
    row = check(kink_graph(step), backward)["h"]
    assert row.status == "mismatch" and "a kink of `c = " in row.hint and convention in row.hint, row.hint


def _rebound(x, w):
    h = x * w
    h = h.tanh()
    loss = h.sum()
    return loss


def _rebound_inputs():
    generator = torch.Generator().manual_seed(0)
    return {"x": torch.randn(4, generator=generator), "w": torch.randn(4, generator=generator).requires_grad_()}


def test_fd_on_a_name_bound_twice_is_not_run_rather_than_blaming_autograd():
    """``fd=['h']`` with ``h = h.tanh()`` nudged the first ``h`` against the gradient of the second: a right backward
    failed on a graph row saying 'autograd disagrees with finite differences ... the forward's own derivative is
    wrong'. The name is unchecked, and its spot check is not run, saying why."""
    report = check(
        Graph("rebound", _rebound, _rebound_inputs),
        "dw = (1 - torch.tanh(x * w) ** 2) * x",
        dtype="float64",
        fd=["h", "w"],
    )
    assert report.passed, report.to_table()
    assert report["h"].status == "unchecked" and report["h"].fd.startswith("fd not run: h is bound"), report["h"].fd
    assert report["w"].fd == "fd 3/3 ok"


def test_fd_on_a_complex_variable_says_why_and_leaves_the_others_checked():
    """A complex intermediate among ``fd=`` names made the whole spot check 'fd not run: RuntimeError: value cannot
    be converted to type double without overflow', on the real parameter's row too."""

    def forward_mixed(z, w):
        a = z * w
        loss = (a * a.conj()).real.sum()
        return loss

    def inputs():
        generator = torch.Generator().manual_seed(0)
        z = torch.randn(4, dtype=torch.complex128, generator=generator)
        return {"z": z, "w": torch.randn(4, dtype=torch.float64, generator=generator).requires_grad_()}

    backward = "da = 2 * a\ndw = (da.conj() * z).real"
    report = check(Graph("mixed", forward_mixed, inputs), backward, dtype="float64", fd=["a", "w"])
    assert report["a"].fd == "fd not run: a is complex, and the spot check nudges real values", report["a"].fd
    assert report["w"].fd == "fd 3/3 ok", report.to_table()


def _viewed(x, w):
    h = x @ w
    hv = h.view(-1)
    a = hv.sum()
    b = (h**2).sum()
    loss = a + b
    return loss


def test_fd_on_a_view_whose_base_is_used_later_is_not_run_rather_than_blaming_autograd():
    """``hv = h.view(-1)`` nudged in place moved ``h`` in ``b = (h**2).sum()`` too: the central difference counted
    that path, autograd's gradient of ``hv`` does not, and a right backward failed on a graph row ('autograd
    disagrees with finite differences'). The base nudged at its own binding still reaches the view, as it should."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        return {
            "x": torch.randn(3, 2, generator=generator),
            "w": torch.randn(2, 2, generator=generator).requires_grad_(),
        }

    backward = "da = torch.ones_like(a)\ndb = torch.ones_like(b)\ndhv = torch.ones_like(hv)\n"
    backward += "dh = dhv.view(3, 2) + 2 * h\ndw = x.T @ dh"
    report = check(Graph("viewed", _viewed, inputs), backward, dtype="float64", fd=["hv", "h", "w"])
    assert report.passed, report.to_table()
    assert report["hv"].fd.startswith("fd not run: hv shares its memory with h"), report["hv"].fd
    assert report["h"].fd == "fd 3/3 ok" and report["w"].fd == "fd 3/3 ok", report.to_table()


class _ClampAtZero(torch.autograd.Function):
    """A ReLU by hand: its backward takes relu'(0) = 0, as autograd does."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0)


class _WrongAtZero(_ClampAtZero):
    """The same, but 5x the upstream gradient at 0: outside both one-sided slopes."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0) + 5 * g * (x == 0)


class _HalfSquare(torch.autograd.Function):
    """``x * x`` with the backward's factor 2 forgotten."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return x * g


def test_check_function_against_finite_differences_takes_a_kinks_one_sided_slope():
    """At x = 0 the central difference of a ReLU is the average of its slopes (0.5 of the upstream), and the right
    backward's relu'(0) = 0 was a mismatch; a value outside both one-sided slopes still fails."""
    from gradcheck_kit.function import check_function

    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    right = check_function(_ClampAtZero, {"x": x})
    assert right.passed, right.to_table()
    assert check_function(_WrongAtZero, {"x": x})["x"].status == "mismatch"


def test_check_function_against_finite_differences_does_not_call_them_a_custom_function():
    """The hint of a wrong backward judged against finite differences read "finite differences's gradient of x
    comes through the custom finite differences.Function ...": the note is about autograd, which is not used."""
    from gradcheck_kit.function import check_function

    x = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    row = check_function(_HalfSquare, {"x": x})["x"]
    assert row.status == "mismatch" and row.hint == "off by a factor 1/2", row.hint


def _dropped(x, W):
    h = x @ W
    d = h * (torch.rand_like(h) > 0.5) * 2
    s = h.tanh()
    loss = (d * s).sum()
    return loss


def test_a_failing_checks_hints_leave_the_callers_random_state_as_it_was():
    """The hints re-run a consumer's line to find a missing branch; re-running a dropout line drew random numbers
    from the caller's generator, so a script's later draws depended on whether its check failed."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        return {
            "x": torch.randn(6, 4, generator=generator),
            "W": torch.randn(4, 4, generator=generator).requires_grad_(),
        }

    missing = "dd = s.clone()\nds = d.clone()\ndh = ds * (1 - s ** 2)\ndW = x.T @ dh"
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    report = check(Graph("dropped", _dropped, inputs), missing)
    assert report["h"].status == "mismatch" and "add that branch" in report["h"].hint, report["h"].hint
    assert torch.equal(torch.rand(3), expected)


def _complex_weighted(z, w):
    a = z * w
    b = (a * a.conj()).real
    loss = b.sum()
    return loss


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_complex_gradient_in_a_half_precision_cell_is_judged_without_a_casting_warning(dtype):
    """The rule's floor rounded the complex gold to the cell's real dtype: torch warned 'Casting complex values to
    real discards the imaginary part' out of the check. The parts round to the gradient's own dtype now; a 0.1%
    mistake in the imaginary parts still fails."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        z = torch.randn(64, dtype=torch.complex64, generator=generator).requires_grad_()
        return {"z": z, "w": torch.randn(64, generator=generator).requires_grad_()}

    graph = Graph("complex_weighted", _complex_weighted, inputs)
    right = "db = torch.ones_like(b)\nda = 2 * a * db\ndz = da * w\ndw = (da.conj() * z).real.to(w.dtype)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = check(graph, right, dtype=dtype)
    assert report.passed, report.to_table()
    assert not [w for w in caught if "imaginary part" in str(w.message)]
    wrong = right.replace("dz = da * w", "dz = da * w\ndz = dz + 1e-3j * dz.imag")
    assert check(graph, wrong, dtype=dtype)["z"].status == "mismatch"


def test_a_float32_gradient_in_subnormals_is_not_confirmed_by_a_float64_run_at_the_round_off_floor():
    """In a float32 cell on inputs of 1e-22, ``dw`` (1e-44) is a few subnormal steps, autograd's own value is far off
    the gold, and the same backward run in float64 decides: that run was judged at the round-off floor of the flow
    (1e-35), so a 1% wrong ``dw`` 'matched the gold' and passed. Its float32 probe now refutes that floor."""
    graph = tiny_inputs_graph(1e-22)
    assert check(graph, "dh = 2 * h\ndw = x.T @ dh * 1.01")["w"].status == "mismatch"
    assert check(graph, "dh = 2 * h\ndw = x.T @ dh").passed


def test_the_pivot_of_a_case_skipped_in_every_cell_shows_its_status():
    """``--device cuda --pivot status`` on a machine without CUDA printed an empty table: the skipped cells had no
    variable row to fill. The case is now one row of its cells' statuses."""

    def inputs():
        return {"w": torch.ones(2, requires_grad=True)}

    def forward_plain(w):
        loss = (w * w).sum()
        return loss

    table = check(Graph("plain", forward_plain, inputs), "dw = 2 * w", device="cuda")
    if table.rows[0].status != "skipped":
        pytest.skip("CUDA is available here")
    assert table.pivot("status").to_numpy().tolist() == [["skipped"]]


def test_a_clamp_between_tensor_bounds_gets_a_hint_not_a_traceback():
    """The kink hint read a clamp's saved bounds; tensor bounds (``x.clamp(lo, hi)``) are freed once autograd ran,
    and reading them raised out of check() for a backward that masked the bounds out."""

    def inputs():
        return {"x": torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0]).requires_grad_()}

    def forward_clamped(x):
        c = x.clamp(torch.zeros(5), torch.ones(5))
        loss = (c * x.new_tensor([1.0, 2, 3, 4, 5])).sum()
        return loss

    backward = "dc = x.new_tensor([1.0, 2, 3, 4, 5])\ndx = dc * ((x > 0) & (x < 1))"
    row = check(Graph("clamped", forward_clamped, inputs), backward)["x"]
    assert row.status == "mismatch" and "wrong only in 2/5 elements" in row.hint, row.hint


def test_a_forward_underflowing_half_precision_is_said_so_not_blamed_on_a_random_draw():
    """``y = w * 1e-7`` is subnormal in float16 (a few significant bits): the rule cannot judge the forward, and its
    error named 'a random draw that depends on the dtype' first. It names the value below float16's range."""

    def inputs():
        return {"w": torch.randn(16, generator=torch.Generator().manual_seed(0)).requires_grad_()}

    def forward_tiny(w):
        y = w * 1e-7
        z = y.sin() * 1e4
        loss = z.sum()
        return loss

    backward = "dz = torch.ones_like(z)\ndy = dz * 1e4 * y.cos()\ndw = dy * 1e-7"
    row = check(Graph("underflow", forward_tiny, inputs), backward, dtype="float16").rows[0]
    assert row.status == "error" and "y holds values below float16's smallest normal number" in row.message, row
    assert "random draw" not in row.message


def sparse_weight_graph() -> Graph:
    """``h = torch.sparse.mm(W, x)`` with a sparse COO parameter ``W``: autograd's gradient keeps W's pattern."""

    def inputs():
        indices = torch.tensor([[0, 1, 2], [2, 0, 1]])
        W = torch.sparse_coo_tensor(indices, torch.tensor([1.0, 2.0, 3.0]), (3, 3)).coalesce().requires_grad_()
        return {"W": W, "x": torch.randn(3, 2, generator=torch.Generator().manual_seed(0))}

    def forward_sparse(W, x):
        h = torch.sparse.mm(W, x)
        loss = (h * h).sum()
        return loss

    return Graph("sparse_weight", forward_sparse, inputs)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_a_sparse_parameter_is_judged_not_a_traceback(dtype):
    """A sparse COO weight made check() raise: 'reshape is not implemented for sparse tensors' out of the float32
    round-off test, and 'Could not run aten::index.Tensor with arguments from the SparseCPU backend' out of the
    hints. The right gradient (W's pattern) passes; a dense one, nonzero off the pattern, and 2x are mismatches."""
    graph = sparse_weight_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note that sparse invariant checks are off
        right = check(graph, "dh = 2 * h\ndW = (dh @ x.T).sparse_mask(W)", dtype=dtype)
        dense_everywhere = check(graph, "dh = 2 * h\ndW = dh @ x.T", dtype=dtype)
        doubled = check(graph, "dh = 2 * h\ndW = (2 * dh @ x.T).sparse_mask(W)", dtype=dtype)
    assert right.passed, right.to_table()
    assert dense_everywhere["W"].status == "mismatch" and doubled["W"].status == "mismatch"


def test_a_dense_gradient_of_a_sparse_parameter_is_hinted_to_keep_its_pattern():
    """The gradient ``dh @ x.T`` is right on W's pattern and nonzero off it, where autograd's is zero: the hint
    said nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = check(sparse_weight_graph(), "dh = 2 * h\ndW = dh @ x.T")["W"]
    assert row.status == "mismatch" and "right on W's sparsity pattern" in row.hint and ".sparse_mask(W)" in row.hint


def test_fd_beside_a_sparse_parameter_checks_the_dense_variables():
    """fd=['W', 'h'] with W a sparse weight: looking for views asked W for its storage, which raised, and the whole
    spot check read 'fd not run: NotImplementedError: Cannot access storage of SparseTensorImpl', h's row too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backward = "dh = 2 * h\ndW = (dh @ x.T).sparse_mask(W)"
        report = check(sparse_weight_graph(), backward, dtype="float64", fd=["W", "h"])
    assert report["h"].fd == "fd 3/3 ok", report["h"].fd
    assert report["W"].fd == "fd not run: W is sparse, and the spot check nudges dense values", report["W"].fd


def _centred(x, w, b, c):
    h = x @ w + b
    hn = h - h.mean(0, keepdim=True)
    loss = (hn * c).sum() * 1e-25
    return loss


def test_a_bias_that_centring_cancels_is_not_failed_where_float32_sums_it_to_an_exact_zero():
    """``db`` of a centred layer is zero in exact arithmetic; at a flow of 1e-25 autograd's float64 value is
    round-off of 6e-42 and the float32 run's sum cancelled to exactly 0, which 81635ef took for an underflow: the
    right ``db = torch.zeros(2)`` failed ('manual 0 vs autograd -5.74e-42'). A float32 zero is an underflow only
    below float32's smallest subnormal."""

    def inputs():
        generator = torch.Generator().manual_seed(14)
        x = torch.randn(2, 3, generator=generator)
        w, b = torch.randn(3, 2, generator=generator), torch.randn(2, generator=generator)
        return {"x": x, "w": w.requires_grad_(), "b": b.requires_grad_(), "c": torch.randn(2, 2, generator=generator)}

    backward = "dhn = c * 1e-25\ndh = dhn - dhn.mean(0, keepdim=True)\ndw = x.T @ dh\n"
    backward += "db = torch.zeros(2, dtype=x.dtype)"
    report = check(Graph("centred", _centred, inputs), backward, dtype="float64")
    assert report.passed, report.to_table()


def _scaled_rows(x):
    y = x * torch.tensor([[1.0], [2.0]])
    loss = y.sum()
    return loss


def test_no_tie_hint_where_no_step_picks_among_the_values():
    """Rows' factors swapped on inputs with repeated values: the tie hint said 'any split between tied maxima is a
    valid subgradient', telling the student a wrong gradient was right, though nothing takes a max there."""
    inputs = {"x": torch.tensor([[1.0, 3.0, 5.0], [3.0, 5.0, 1.0]]).requires_grad_()}
    row = check(
        Graph("rows", _scaled_rows, lambda: inputs), "dy = torch.ones_like(y)\ndx = dy * torch.tensor([[2.0], [1.0]])"
    )["x"]
    assert row.status == "mismatch" and "tied" not in row.hint, row.hint


def _viewed_in_the_loss(x, w):
    h = x @ w
    hv = h.view(-1)
    loss = hv.sum() + (h**2).sum()
    return loss


def test_fd_on_a_view_whose_base_the_loss_line_uses_is_not_run():
    """The base used again in the loss's own line (no variable, so no later consumer was seen): the view was
    nudged in place, h moved with it, and a right backward failed on a graph row."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(3, 2, generator=generator, dtype=torch.float64)
        return {"x": x, "w": torch.randn(2, 2, generator=generator, dtype=torch.float64).requires_grad_()}

    backward = "dhv = torch.ones_like(hv)\ndh = dhv.view(3, 2) + 2 * h\ndw = x.T @ dh"
    report = check(Graph("loss_view", _viewed_in_the_loss, inputs), backward, dtype="float64", fd=["hv", "w"])
    assert report.passed, report.to_table()
    assert report["hv"].fd.startswith("fd not run: hv shares its memory with h"), report["hv"].fd
