"""The check engine at the level a user meets it: a graph, a backward, a Report."""

from pathlib import Path

import nbformat
import pytest
import torch
from test_verdicts import RAW_FEATURE_BACKWARD, raw_feature_graph

from gradcheck_kit import Graph, NotebookCell, Tolerance, check, evaluate, load_cases

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"
BACKWARD = (MAKEMORE / "backward_ex1.py").read_text()
ORDER = [
    "logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes", "logits",
    "h", "W2", "b2", "hpreact", "bngain", "bnraw", "bnbias", "bnvar_inv", "bnvar", "bndiff2", "bndiff",
    "bnmeani", "hprebn", "embcat", "W1", "b1", "emb", "C",
]  # fmt: skip


@pytest.fixture(scope="module")
def graph() -> Graph:
    cases = {case.name: case for case in load_cases(MAKEMORE)}
    return cases["makemore-ex1"].graph


def broken(old: str, new: str) -> str:
    assert old in BACKWARD, old
    return BACKWARD.replace(old, new, 1)


def test_makemore_reference_backward_passes_all_26_in_backprop_order(graph):
    report = check(graph, MAKEMORE / "backward_ex1.py")
    assert [row.variable for row in report.rows] == ORDER
    assert all(row.status == "ok" and row.approximate for row in report.rows)
    assert max(row.maxdiff for row in report.rows) <= 1e-8
    assert report.passed


def test_each_status_on_purpose_built_broken_gradients(graph):
    code = broken("db2 = dlogits.sum(0)", "db2 = dlogits.sum(0, keepdim=True)")
    code = code.replace("dbnbias = dhpreact.sum(0, keepdim=True)\n", "").replace('cmp("bnbias"', "# cmp(")
    code += "\n".join(
        [
            "",
            "dbngain = dbngain.double()",
            "dbnvar = dbnvar * float('nan')",
            "dW1 = dW1.tolist()",
            "dW2 = dW2.to('meta')",
            "dbnvarinv = dbnvar_inv",
        ]
    )
    report = check(graph, code)
    statuses = {row.variable: row.status for row in report.rows if row.status != "ok"}
    assert statuses == {
        "b2": "shape",
        "bnbias": "missing",
        "bngain": "dtype",
        "bnvar": "nonfinite",
        "W1": "not_tensor",
        "W2": "device",
        "dbnvarinv": "extra",
    }
    assert "values match after a reshape (drop the kept dimension" in report["b2"].message
    assert report["bnbias"].message == "no dbnbias was assigned"
    assert report["bngain"].message.startswith("expected dtype float32, got float64")
    assert report["W1"].message == "expected a tensor, got list"
    assert report["dbnvarinv"].message.endswith("did you mean dbnvar_inv?")
    assert sum(row.status == "ok" for row in report.rows) == 20
    assert not report.passed


def test_root_cause_is_the_first_wrong_gradient_whose_consumers_are_right(graph):
    report = check(graph, broken("dlogprobs[range(n), Yb] = -1.0 / n", "dlogprobs[range(n), Yb] = 1.0 / n"))
    assert [row.variable for row in report.rows if row.root_cause] == ["logprobs"]
    followers = [row for row in report.rows if row.failed and not row.root_cause]
    assert len(followers) >= 20
    assert {row.caused_by for row in followers} == {"logprobs"}


def test_independent_mistakes_are_each_a_root_cause(graph):
    code = broken("dbnvar = (-0.5", "dbnvar = (0.5")
    code = code.replace("dW2 = h.T @ dlogits", "dW2 = 2 * h.T @ dlogits")
    report = check(graph, code)
    roots = [row.variable for row in report.rows if row.root_cause]
    assert roots == ["W2", "bnvar"]
    assert report["hprebn"].caused_by == "bnvar"


def test_same_check_twice_gives_byte_identical_csv(graph):
    code = broken("dW2 = h.T @ dlogits", "dW2 = h.T @ dlogits * 1.01")
    assert check(graph, code).to_csv() == check(graph, code).to_csv()


def test_notebook_cell_as_backward(graph, tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("raise RuntimeError('the data-loading cell must not run')"),
        nbformat.v4.new_code_cell("# Exercise 1: backprop through the whole thing\n%matplotlib inline\n" + BACKWARD),
        nbformat.v4.new_code_cell("raise RuntimeError('the training cell must not run')", metadata={"tags": ["x"]}),
    ]
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook, path)
    by_marker = check(graph, NotebookCell(path, marker="# Exercise 1"))
    assert by_marker.passed and len(by_marker.rows) == 26
    notebook.cells[1].metadata["tags"] = ["exercise1"]
    nbformat.write(notebook, path)
    assert check(graph, NotebookCell(path, tag="exercise1")).passed


def test_missing_notebook_cell_is_one_error_row(graph, tmp_path):
    path = tmp_path / "empty.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    report = check(graph, NotebookCell(path, tag="exercise1", marker="# Exercise 1"))
    assert [row.status for row in report.rows] == ["error"] and not report.passed
    assert "no code cell with tag 'exercise1' or first line '# Exercise 1'" in report.rows[0].message


def test_notebook_cell_tag_that_matches_nothing_falls_back_to_the_marker(graph, tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("%%time\n# Exercise 1\n" + BACKWARD)]
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook, path)
    assert check(graph, NotebookCell(path, tag="exercise1", marker="# Exercise 1")).passed


def test_notebook_cell_needs_a_tag_or_a_marker(tmp_path):
    with pytest.raises(ValueError, match="give a cell tag"):
        NotebookCell(tmp_path / "student.ipynb")


def test_backward_mutating_forward_values_cannot_corrupt_the_reference(graph):
    code = BACKWARD + "\nlogprobs.zero_()\nh.mul_(0)\nW1 += 1\nC.fill_(3)\n"
    assert check(graph, code).passed
    vandal = "logprobs.zero_()\nprobs.fill_(1)\n" + BACKWARD
    report = check(graph, vandal)
    assert report["W2"].status == "mismatch"  # the student's own values changed; autograd's did not
    assert check(graph, MAKEMORE / "backward_ex1.py").passed


def test_backward_raising_part_way_keeps_what_it_computed(graph):
    report = check(graph, broken("dnorm_logits = counts * dcounts", "raise ValueError('boom')"))
    assert report["counts"].status == "ok"
    assert report["norm_logits"].status == "missing"
    assert report["C"].message.startswith("no dC: the backward stopped before assigning it (ValueError: boom at line")
    assert "`raise ValueError('boom')`" in report["C"].message


def test_callable_backward_returns_a_mapping(graph):
    def backward(logprobs, n, Yb):
        dlogprobs = torch.zeros_like(logprobs)
        dlogprobs[range(n), Yb] = -1.0 / n
        return {"dlogprobs": dlogprobs}

    report = check(graph, backward)
    assert report["logprobs"].status == "ok"
    assert report["probs"].status == "missing"

    def forgot_return(logprobs):
        pass

    message = check(graph, forgot_return)["logprobs"].message
    assert "expected forgot_return() to return a mapping of gradients, got NoneType" in message


def test_name_rule_and_tolerances_are_configurable(graph):
    code = BACKWARD.replace("dlogprobs", "logprobs_grad")
    report = check(graph, code, name_rule="{name}_grad", variables=["logprobs"])
    assert [(row.variable, row.status) for row in report.rows] == [("logprobs", "ok")]
    assert check(graph, BACKWARD, tolerance="makemore")["W1"].rtol == 1e-5
    scaled = broken("dW2 = h.T @ dlogits", "dW2 = h.T @ dlogits * 1.001")
    assert check(graph, scaled)["W2"].status == "mismatch"
    loose = check(graph, scaled, overrides={"W2": Tolerance(1e-2, 0.0)})
    assert loose["W2"].status == "ok" and loose.passed


def test_rebound_names_and_inplace_changes_in_the_forward_are_reported_unchecked():
    """Their own gradient cannot be checked; what is computed from them still is, so a correct backward passes."""

    def inputs():
        return {"x": torch.ones(3), "w": torch.full((3,), 2.0, requires_grad=True)}

    rebound = Graph("rebound", "h = x * w\nh = h + 1\nloss = h.sum()\n", inputs)
    report = check(rebound, "dh = torch.ones(3)\ndw = x")
    assert report["h"].status == "unchecked"
    assert "bound to more than one tensor (again at line 2)" in report["h"].message
    assert report.passed and report.to_table().startswith("rebound [cpu-float32]: 1/1 ok")
    assert check(rebound, "dh = torch.ones(3)\ndw = 2 * x")["w"].status == "mismatch"

    def inplace_forward(x, w):
        y = x * w
        y.mul_(2)
        loss = y.sum()
        return loss

    report = check(Graph("inplace", inplace_forward, inputs), "dy = torch.ones(3)\ndw = 2 * x")
    assert report["y"].status == "unchecked" and "modified in place" in report["y"].message and report.passed


def test_a_rebound_parameter_name_fails_the_check():
    """``w = w * 2`` leaves the parameter's own gradient with no row that checks it."""

    def inputs():
        return {"x": torch.ones(3), "w": torch.full((3,), 2.0, requires_grad=True)}

    report = check(Graph("rebound-w", "w = w * 2\nloss = (x * w).sum()\n", inputs), "dw = 2 * x")
    assert report["w"].status == "graph" and "first held a parameter" in report["w"].message and not report.passed


def test_a_broken_forward_is_one_error_row():
    def inputs():
        return {"w": torch.ones(2, requires_grad=True)}

    report = check(Graph("broken", "loss = (w * undefined_name).sum()", inputs), "dw = w")
    assert [(row.status, row.variable) for row in report.rows] == [("error", "")]
    assert "undefined_name" in report.rows[0].message
    assert not report.passed


def test_missing_gradients_are_neither_root_causes_nor_followers(graph):
    report = check(
        graph, broken("dW2 = h.T @ dlogits", "dW2 = 2 * h.T @ dlogits").split("cmp(")[0].replace("dh = ", "dhh = ")
    )
    assert report["h"].status == "missing"
    assert not report["h"].root_cause and report["h"].caused_by == ""
    assert [row.variable for row in report.rows if row.root_cause] == ["W2"]


def test_independent_mode_makes_every_wrong_gradient_its_own_root_cause(graph):
    from gradcheck_kit.capture import capture
    from gradcheck_kit.manual import run_manual

    captured = capture(graph)
    values = run_manual(
        broken("dlogprobs[range(n), Yb] = -1.0 / n", "dlogprobs[range(n), Yb] = 1.0 / n"), captured.namespace
    ).values
    report = evaluate(captured, values, case="independent", independent=True)
    wrong = [row for row in report.rows if row.failed]
    assert wrong and all(row.root_cause and not row.caused_by for row in wrong)
    assert report["logprobs"].hint.startswith("sign flipped")


def parameter_graph(forward_source: str) -> Graph:
    def inputs():
        generator = torch.Generator().manual_seed(0)
        return {
            "x": torch.randn(8, 4, generator=generator),
            "w": torch.randn(4, 3, generator=generator).requires_grad_(),
        }

    return Graph("parameter", forward_source, inputs)


PARAMETER_BACKWARD = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh\n"


def test_a_parameter_changed_in_place_in_the_forward_is_still_checked():
    """A max-norm constraint (clamp_ under no_grad, nn.Embedding(max_norm=...)): autograd's w.grad is defined."""
    clamped = parameter_graph(
        "with torch.no_grad():\n    w.clamp_(-1.0, 1.0)\nh = x @ w\ny = h.tanh()\nloss = y.sum()\n"
    )
    assert check(clamped, PARAMETER_BACKWARD).passed
    assert check(clamped, PARAMETER_BACKWARD.replace("dw = ", "dw = -"))["w"].status == "mismatch"


def test_a_parameter_name_rebound_after_its_use_is_checked_as_the_parameter():
    """``w = w.norm()`` kept for logging does not reach the loss: ``dw`` is the parameter's gradient."""
    logged = parameter_graph("h = x @ w\ny = h.tanh()\nw = w.norm()\nloss = y.sum()\n")
    assert check(logged, PARAMETER_BACKWARD).passed
    wrong = check(logged, PARAMETER_BACKWARD.replace("dw = x.T @ dh", "dw = torch.zeros(4, 3)"))
    assert wrong["w"].status == "mismatch" and not wrong.passed


def test_the_float64_second_run_prints_nothing(capfd):
    """The second run is the check's business: what the backward prints is shown once, from the reported run."""
    printing = "print('backward ran')\nimport sys\nprint('to stderr', file=sys.stderr)\n"
    report = check(raw_feature_graph(offset=1000.0, batch=32), printing + RAW_FEATURE_BACKWARD.format(bessel=""))
    assert report["W1"].message.startswith("float32 cannot decide it"), report["W1"].message
    out, err = capfd.readouterr()
    assert (out.count("backward ran"), err.count("to stderr")) == (1, 1), (out, err)


def _xw():
    """x (4, 3) and a parameter w (3, 2), drawn from seed 0."""
    generator = torch.Generator().manual_seed(0)
    return {"x": torch.randn(4, 3, generator=generator), "w": torch.randn(3, 2, generator=generator).requires_grad_()}


@pytest.mark.parametrize(
    ("given", "status"),
    [
        ("torch.ones(3, 2).to(torch.float8_e4m3fn)", "dtype"),
        ("torch.quantize_per_tensor(torch.ones(3, 2), 0.1, 0, torch.qint8)", "not_tensor"),
        ("torch.nested.nested_tensor([torch.ones(2), torch.ones(2), torch.ones(2)])", "not_tensor"),
    ],
)
def test_a_gradient_with_no_arithmetic_to_measure_it_is_a_status_not_a_traceback(given, status, tmp_path):
    """float8, quantized and nested gradients raised NotImplementedError/RuntimeError out of check()."""

    def forward(x, w):
        h = x @ w
        loss = h.sum()
        return loss

    report = check(Graph("exotic", forward, _xw), f"dh = torch.ones(4, 2)\ndw = {given}\n")
    assert report["w"].status == status and "float32" in report["w"].message, report["w"].message
    assert report["h"].status == "ok"
    report.to_html(tmp_path / "r.html")


class PlainLinear:
    """A makemore part 3 style layer: a plain class holding a tensor, which capture does not search."""

    def __init__(self, generator):
        self.weight = torch.randn(3, 2, generator=generator).requires_grad_()

    def __call__(self, x):
        return x @ self.weight


def test_a_parameter_held_by_a_plain_object_of_the_inputs_is_named_by_its_path():
    """It was '<parameter 1> ... read from outside its inputs; pass it in inputs()', which it was."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        return {"x": torch.randn(4, 3, generator=generator), "layers": [PlainLinear(generator)]}

    def forward(x, layers):
        h = layers[0](x)
        loss = h.tanh().sum()
        return loss

    report = check(Graph("plain", forward, inputs), "dh = 1 - h.tanh()**2\n")
    row = report["layers[0].weight"]
    assert row.status == "graph" and "held by a plain object of the inputs" in row.message, report.to_table()


@pytest.mark.parametrize(
    ("mistake", "variable"),
    [
        (("dbndiff2 = (1.0 / (n - 1))", "dbndiff2 = (1.0 / n)"), "bndiff2"),
        (("dW2 = h.T @ dlogits", "dW2 = -(h.T @ dlogits)"), "W2"),
    ],
    ids=["bessel", "sign"],
)
@pytest.mark.parametrize(
    ("manual_on", "reference_on"),
    [("float16", "float32"), ("bfloat16", "float32"), ("float32", "float16"), ("float64", "bfloat16")],
)
def test_a_half_precision_cross_check_passes_the_right_backward_and_fails_a_classic_mistake(
    manual_on, reference_on, mistake, variable
):
    """Judged by the reference rule (autograd's error taken on the coarser side), a cross check with a half
    precision side passes the right backward (the reference side half failed 1-5 of 26 before) and still finds
    these on their own variable, the first root cause (float64 against bfloat16 may name a second one later)."""
    from gradcheck_kit.check import cross_check

    graph = {case.name: case for case in load_cases(MAKEMORE)}["makemore-ex1"].graph
    backward = (MAKEMORE / "backward_ex1.py").read_text()
    assert mistake[0] in backward
    right = cross_check(graph, backward, ("cpu", manual_on), ("cpu", reference_on))
    assert right.passed, right.to_table()
    report = cross_check(graph, backward.replace(*mistake), ("cpu", manual_on), ("cpu", reference_on))
    roots = [row.variable for row in report.rows if row.root_cause]
    assert not report.passed and roots[0] == variable, report.to_table()


def test_a_float64_cpu_cell_is_its_own_gold():
    """The gold is autograd in float64 on the CPU: for such a cell it ran the same forward again for the same
    values (a float64 check under the reference rule ran the forward twice)."""
    runs = []

    def forward(x, w):
        runs.append(x.dtype)
        h = x @ w
        loss = h.tanh().sum()
        return loss

    report = check(
        Graph("own-gold", forward, _xw), "dh = 1 - h.tanh()**2\ndw = x.T @ dh\n", dtype="float64", rule="reference"
    )
    assert report.passed and runs == [torch.float64], (runs, report.to_table())


class TiedModule(torch.nn.Module):
    """A tied weight kept as a transpose computed once from the parameter, outside forward."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))
        self.wT = self.weight.t()

    def forward(self, x):
        h = x @ self.weight
        a = h.tanh()
        y = a @ self.wT
        loss = y.sum()
        return loss


def test_a_module_tensor_computed_from_its_parameters_outside_forward_is_a_graph_row():
    """Copied for the check as a constant (444ae26), self.wT lost its path to weight: the backward forgetting the
    tied branch passed 4/4 and the right one failed."""
    forgetting = "dy = torch.ones_like(y)\\nda = dy @ wT.T\\ndh = (1 - a**2) * da\\ndweight = x.T @ dh\\n"
    report = check(Graph("tied", TiedModule(), lambda: {"x": torch.randn(4, 3)}), forgetting)
    row = report["self.wT"]
    assert not report.passed and row.status == "graph", report.to_table()
    assert "computed from its parameters before the check" in row.message


def _squared_mean(x, w):
    h = x @ w
    total = (h**2).mean()
    return total


@pytest.mark.parametrize(
    ("given", "got"),
    [
        ("2.0", "got 2.0"),
        ("torch.tensor(0.5)", "got 0.5"),
        ("torch.ones(4)", "got a tensor of shape (4,)"),
        ("__import__('numpy').float32(2.0)", "got 2.0"),
        ("1.0000001", "got 1.0000001"),
        ("10**40", "got 10000000000000000000000000000000000000000"),
        ("torch.tensor([2.0]).numpy()", "got 2.0"),
    ],
)
def test_a_gradient_of_the_loss_other_than_one_fails(given, got):
    """d(loss)/d(loss) is 1: a backward starting from another value was ignored, whatever followed from it."""
    squared = Graph("squared", _squared_mean, lambda: {"x": torch.ones(4, 3), "w": torch.ones(3, 2).requires_grad_()})
    right = "dh = 2 * h / h.numel() * dtotal\ndw = x.T @ dh\n"
    for one in ("1", "1.0", "torch.tensor(1.0)", "torch.ones(1)"):
        report = check(squared, f"dtotal = {one}\n" + right)
        assert report.passed and [r.variable for r in report.rows] == ["h", "w"], report.failures
    report = check(squared, f"dtotal = {given}\n" + right.replace(" * dtotal", ""))
    assert [(r.variable, r.status) for r in report.rows] == [("h", "ok"), ("w", "ok"), ("dtotal", "mismatch")]
    assert report.rows[-1].message == f"dtotal is the loss's gradient with respect to itself: expected 1, {got}"
    assert not report.passed


def _in_containers(x, model, P):
    out = model(x) + (x @ P["w"]).sum(1, keepdim=True)
    loss = out.pow(2).mean()
    return loss


def test_a_gradient_missing_from_its_container_names_what_the_container_holds():
    """``dmodel`` without '2.bias' read 'no dmodel.2.bias was assigned; did you mean dmodel?', and a mistyped key
    'no dP['w'] was assigned', though both containers were given."""

    def inputs():
        torch.manual_seed(5)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        return {"model": model, "x": torch.randn(6, 3), "P": {"w": torch.randn(3, 2, requires_grad=True)}}

    backward = (
        "dout = 2 * out / out.numel()\n"
        "l0, l2 = model[0], model[2]\n"
        "a = torch.tanh(x @ l0.weight.T + l0.bias)\n"
        "dpre = (dout @ l2.weight) * (1 - a**2)\n"
        "dmodel = {'0.weight': dpre.T @ x, '0.bias': dpre.sum(0), '2.weight': dout.T @ a}\n"
        "dP = {'W': x.T @ dout.expand(6, 2)}\n"
    )
    report = check(Graph("containers", _in_containers, inputs), backward)
    assert report["model.2.bias"].message == "dmodel has no '2.bias'; it holds '0.bias', '0.weight', '2.weight'"
    assert report["P['w']"].message == "dP has no 'w'; it holds 'W'"
    assert report["model.0.weight"].status == "ok"


def _square(x, w):
    h = x @ w
    loss = (h**2).sum()
    return loss


def _square_inputs():
    generator = torch.Generator().manual_seed(0)
    return {"x": torch.randn(6, 3, generator=generator), "w": torch.randn(3, 2, generator=generator).requires_grad_()}


def test_a_bare_string_of_names_is_refused_not_read_letter_by_letter():
    """``fd="w"`` once checked the letters of a name; ``dtypes="float64"`` was 'unknown dtype f'."""
    from gradcheck_kit import Case, run_case

    graph = Graph("square", _square, _square_inputs)
    with pytest.raises(ValueError, match=r"fd expected a tuple of names, e.g. \('gamma',\), got 'gamma'"):
        check(graph, "dh = 2 * h\ndw = x.T @ dh", dtype="float64", fd="gamma")
    case = Case("square", graph, "dh = 2 * h\ndw = x.T @ dh")
    for argument in ("dtypes", "devices", "fd"):
        with pytest.raises(ValueError, match=f"{argument} expected a tuple of names"):
            run_case(case, **{argument: "float64" if argument == "dtypes" else "cpu"})


def test_the_float64_confirmation_run_leaves_the_callers_random_generator_alone():
    """A bfloat16 pass is confirmed by the same backward run in float64; a backward that draws a random number
    advanced the caller's generator once more there, so a script's later draws depended on that run."""
    backward = "noise = torch.rand(1)\ndh = 2 * h\ndw = x.T @ dh"
    torch.manual_seed(5)
    assert check(Graph("square", _square, _square_inputs), backward, dtype="bfloat16").passed
    after_check = torch.rand(1)
    torch.manual_seed(5)
    torch.rand(1)  # the one draw of the cell's own run
    assert torch.equal(after_check, torch.rand(1))


def test_the_forwards_judged_against_a_gold_are_kept_for_one_capture_at_a_time():
    """The grader judges every submission against one capture and one gold: their forward values are concatenated
    once, not per submission. Asked of another capture (another draw), the gold answers for that one, and keeps
    only it (a gold asked of many captures must not hold them all)."""
    from gradcheck_kit import scale
    from gradcheck_kit.draw import Draw

    def draw(seed):
        def inputs():
            generator = torch.Generator().manual_seed(seed)
            x, w = torch.randn(6, 3, generator=generator), torch.randn(3, 2, generator=generator)
            return {"x": x, "w": w.requires_grad_()}

        return Draw.of(Graph("square", _square, inputs))

    same, other = draw(0), draw(1)
    gold = same.capture("cpu", torch.float64)
    cell, stranger = same.capture("cpu", torch.float32), other.capture("cpu", torch.float32)
    kept = scale._Forwards.kept(cell, gold)
    assert kept is scale._Forwards.kept(cell, gold) and kept.diverged == ""
    assert scale._Forwards.kept(stranger, gold).diverged.startswith("h differs between the float32 and float64 runs")
    assert scale._Forwards.kept(cell, gold).diverged == "" and len(gold.derived) == 1


def test_a_float64_judge_runs_the_forward_in_float32_once_per_gold(graph, monkeypatch):
    """A float64 cell's round-off floor is probed by a float32 run of the gold's draw: judging many backwards
    against one gold (the grader, a float64 assignment) ran that forward again for each; it is kept with the gold."""
    from gradcheck_kit import run_manual
    from gradcheck_kit.draw import Draw
    from gradcheck_kit.reference import gold

    draw = Draw.of(graph)
    cell = draw.capture("cpu", torch.float64)
    reference = gold(draw, torch.float64, cell)
    values = run_manual(BACKWARD, cell.namespace).values
    runs = []
    capture = Draw.capture
    monkeypatch.setattr(Draw, "capture", lambda self, *a, **k: runs.append(a) or capture(self, *a, **k))
    reports = [evaluate(cell, values, case="makemore", gold=reference) for _ in range(3)]
    assert all(report.passed for report in reports) and runs == [("cpu", torch.float32)]
