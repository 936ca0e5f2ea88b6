"""Forwards people actually write: returned losses, lambdas, partials, compiled functions, modules,
closures, parameters in containers, a forward that raises, empty tensors."""

import functools
import linecache
import types

import pytest
import torch
from torch import nn

from gradcheck_kit import Graph, GraphError, capture, check, graph
from gradcheck_kit.forward import held_gradient


def _xw():
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(4, 3, generator=g), "w": torch.randn(3, 2, generator=g).requires_grad_()}


def _expected_dw(inputs):
    x, w = inputs["x"], inputs["w"].detach().requires_grad_()
    torch.tanh(x @ w).sum().backward()
    return w.grad


def returns_unnamed(x, w):
    h = x @ w
    y = torch.tanh(h)
    return y.sum()


def test_a_returned_loss_that_is_not_named_is_used():
    captured = capture(Graph("g", returns_unnamed, _xw))
    assert list(captured.variables) == ["y", "h", "w"]
    torch.testing.assert_close(captured.variables["w"].grad, _expected_dw(_xw()))
    assert captured.namespace["loss"] is not None and captured.loss.shape == ()


def test_a_lambda_runs_and_its_parameters_are_its_variables():
    captured = capture(Graph("g", lambda x, w: torch.tanh(x @ w).sum(), _xw))
    assert list(captured.variables) == ["w"]
    torch.testing.assert_close(captured.variables["w"].grad, _expected_dw(_xw()))


def scaled(x, w, scale):
    h = (x @ w) * scale
    y = torch.tanh(h / scale)
    loss = y.sum()
    return loss


def test_a_partial_binds_its_arguments_and_the_rest_come_from_inputs():
    captured = capture(Graph("g", functools.partial(scaled, scale=2.0), _xw))
    assert list(captured.variables) == ["y", "h", "w"]
    torch.testing.assert_close(captured.variables["w"].grad, _expected_dw(_xw()))


def test_a_torch_compile_wrapped_forward_runs_the_original_function():
    captured = capture(Graph("g", torch.compile(returns_unnamed, backend="eager"), _xw))
    assert list(captured.variables) == ["y", "h", "w"]


def test_a_closure_forward_keeps_its_cells():
    def make(scale):
        def forward(x, w):
            h = (x @ w) * scale
            loss = h.sum()
            return loss

        return forward

    captured = capture(Graph("g", make(3.0), _xw))
    torch.testing.assert_close(captured.variables["w"].grad, 3.0 * _xw()["x"].sum(0)[:, None].expand(3, 2))


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.second = nn.Linear(4, 1)

    def forward(self, x):
        hidden = torch.tanh(self.first(x))
        out = self.second(hidden)
        loss = out.sum()
        return loss


def test_a_module_forward_checks_its_parameters_by_qualified_name_on_a_cast_copy():
    torch.manual_seed(0)
    model = TwoLayers()
    captured = capture(Graph("mod", model, lambda: {"x": torch.randn(5, 3)}), dtype=torch.float64)
    names = set(captured.variables)
    assert {"hidden", "out", "first.weight", "first.bias", "second.weight", "second.bias"} <= names
    assert captured.variables["first.weight"].grad.dtype == torch.float64
    assert model.first.weight.grad is None and model.first.weight.dtype == torch.float32


def uses_a_module(x, model):
    hidden = torch.tanh(model.first(x))
    loss = model.second(hidden).sum()
    return loss


def test_a_module_among_the_inputs_has_its_parameters_checked_under_its_name():
    torch.manual_seed(0)
    model = TwoLayers()
    captured = capture(Graph("g", uses_a_module, lambda: {"x": torch.randn(5, 3), "model": model}))
    assert {"model.first.weight", "model.second.bias", "hidden"} <= set(captured.variables)
    assert model.first.weight.grad is None


def uses_a_list(x, ps):
    h = x @ ps[0]
    loss = (h + ps[1]["b"]).sum()
    return loss


def test_parameters_inside_containers_are_variables_named_by_their_path():
    def inputs():
        return {
            "x": torch.ones(2, 3),
            "ps": [torch.ones(3, 2, requires_grad=True), {"b": torch.zeros(2, requires_grad=True)}],
        }

    captured = capture(Graph("g", uses_a_list, inputs))
    assert {"ps[0]", "ps[1]['b']", "h"} == set(captured.variables)
    torch.testing.assert_close(captured.variables["ps[1]['b']"].grad, torch.full((2,), 2.0))


def leaves_one_out(x, w, unused):
    h = x @ w
    loss = h.sum()
    return loss


def test_parameters_that_do_not_reach_the_loss_are_listed_as_unreached():
    def inputs():
        return {**_xw(), "unused": torch.ones(3, requires_grad=True)}

    captured = capture(Graph("g", leaves_one_out, inputs))
    assert list(captured.unreached) == ["unused"] and "unused" not in captured.variables


def raises(x, w):
    h = x @ w
    y = h @ w
    loss = y.sum()
    return loss


def test_a_forward_that_raises_names_its_file_line_and_source():
    line = raises.__code__.co_firstlineno + 2
    with pytest.raises(GraphError, match=rf"test_capture_forwards.py, line {line}: y = h @ w: RuntimeError: mat1"):
        capture(Graph("g", raises, _xw))


def test_a_code_string_that_raises_names_its_line():
    graph = Graph("s", "h = x @ w\ny = h @ w\nloss = y.sum()", _xw)
    with pytest.raises(GraphError, match=r"<graph s>, line 2: y = h @ w: RuntimeError: mat1"):
        capture(graph)


def test_a_function_whose_source_cannot_be_read_is_a_clear_error():
    namespace = {}
    exec(compile("def hidden(x, w):\n    loss = (x @ w).sum()\n    return loss\n", "<nowhere>", "exec"), namespace)
    with pytest.raises(
        GraphError, match=r"cannot read the source of hidden\(\) in <nowhere>.*pass it as a code string"
    ):
        capture(Graph("g", namespace["hidden"], _xw))


def test_a_function_made_by_exec_with_its_source_in_linecache_is_captured():
    source = "def cell(x, w):\n    h = x @ w\n    loss = h.sum()\n    return loss\n"
    linecache.cache["<cell 1>"] = (len(source), None, source.splitlines(keepends=True), "<cell 1>")
    namespace = {}
    exec(compile(source, "<cell 1>", "exec"), namespace)
    captured = capture(Graph("g", namespace["cell"], _xw))
    assert list(captured.variables) == ["h", "w"] and captured.variables["h"].source == "h = x @ w"


def test_a_name_bound_in_a_loop_of_a_code_string_is_a_rebinding():
    graph = Graph("s", "h = x @ w\nfor _ in range(2):\n    h = h * 2\nloss = h.sum()", _xw)
    problem = capture(graph).variables["h"].problem
    assert "bound to more than one tensor (again at line 3, 3)" in problem


def test_an_empty_tensor_variable_is_captured():
    def inputs():
        return {"e": torch.zeros(0, 3, requires_grad=True), "w": torch.ones(3, requires_grad=True)}

    captured = capture(Graph("g", "s = e.sum(0)\nloss = (s + w).sum()", inputs))
    assert captured.variables["e"].grad.shape == (0, 3)
    assert captured.variables["s"].grad.shape == (3,)


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("w", {"dw": 1}, 1),
        ("ps[1]", {"dps": [0, 2]}, 2),
        ("params['b']", {"dparams": {"b": 3}}, 3),
        ("ps[1]['b']", {"dps": [0, {"b": 4}]}, 4),
        ("model.layer.weight", {"dmodel": {"layer.weight": 5}}, 5),
        ("model.layer.weight", {"dmodel.layer.weight": 6}, 6),
        ("ps[2]", {"dps": [0, 1]}, None),
        ("ps[0]", {}, None),
        ("w", {}, None),
    ],
)
def test_a_held_tensors_gradient_is_found_by_the_same_path_in_the_gradient_container(name, values, expected):
    assert held_gradient(values, name) == expected


def test_check_judges_parameters_in_a_list_through_the_gradient_list():
    right = "dh = torch.ones(2, 2)\ndps = [x.T @ dh, {'b': dh.sum(0)}]"
    report = check(Graph("g", uses_a_list, _ones_and_list), right)
    assert report.passed and {row.variable for row in report.rows} == {"ps[0]", "ps[1]['b']", "h"}
    wrong = check(Graph("g", uses_a_list, _ones_and_list), right.replace("x.T @ dh", "2 * (x.T @ dh)"))
    assert [row.variable for row in wrong.rows if row.status != "ok"] == ["ps[0]"]


def _ones_and_list():
    return {
        "x": torch.ones(2, 3),
        "ps": [torch.ones(3, 2, requires_grad=True), {"b": torch.zeros(2, requires_grad=True)}],
    }


class ShiftedLinear(nn.Linear):
    def forward(self, x):
        y = super().forward(x)
        loss = y.sum()
        return loss


def test_a_module_forward_that_calls_super_keeps_its_class_cell():
    captured = capture(Graph("m", ShiftedLinear(3, 2), lambda: {"x": torch.ones(4, 3)}))
    assert list(captured.variables) == ["y", "bias", "weight"]


CALLS = []


@graph(inputs=lambda: {"x": torch.ones(4, 3), "w": torch.ones(3, 2, requires_grad=True)})
def decorated(x, w):
    global CALLS
    CALLS = [*CALLS, 1]

    def helper(t):
        inner = t * 2
        return inner

    parts = [helper(x @ w) for _ in range(2)]
    if (total := parts[0] + parts[1]) is not None:
        s = total.sum()
    loss = s * 1
    return loss


def test_decorators_globals_nested_defs_comprehensions_and_walrus_keep_their_meaning():
    captured = capture(decorated)
    first = decorated.forward.__code__.co_firstlineno
    assert [(v.name, v.line - first) for v in captured.variables.values()] == [("s", 11), ("total", 10), ("w", 0)]
    assert CALLS == [1] and "inner" not in captured.namespace


@pytest.mark.parametrize(("old", "new"), [("(x, w)", "(a, b)"), ("(x @ w).sum()", "(x @ w).mean()")])
def test_source_that_no_longer_matches_the_running_code_is_an_error(old, new):
    source = "def edited(x, w):\n    loss = (x @ w).sum()\n    return loss\n"
    namespace = {}
    exec(compile(source, "<edited>", "exec"), namespace)
    stale = source.replace(old, new)
    linecache.cache["<edited>"] = (len(stale), None, stale.splitlines(keepends=True), "<edited>")
    with pytest.raises(GraphError, match=r"does not match the code that runs"):
        capture(Graph("g", namespace["edited"], _xw))


def test_check_of_an_empty_tensor_variable_is_a_status_not_a_traceback():
    def inputs():
        return {"e": torch.zeros(0, 3, requires_grad=True), "w": torch.ones(3, requires_grad=True)}

    graph = Graph("g", "s = e.sum(0)\nloss = (s + w).sum()", inputs)
    given = check(graph, "ds = torch.ones(3)\ndw = torch.ones(3)\nde = torch.zeros(0, 3)")
    assert given.passed and given["e"].status == "ok"
    assert check(graph, "ds = torch.ones(3)\ndw = torch.ones(3)")["e"].status == "missing"


class Carried(nn.Module):
    """A module whose forward is given bound (``model.forward``): its parameters travel with the forward."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))

    def forward(self, x):
        h = x @ self.w
        y = h.tanh()
        loss = y.sum()
        return loss


CARRIED_RIGHT = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh\n"
CARRIED_DOUBLED = CARRIED_RIGHT.replace("dw = x.T @ dh", "dw = 2 * (x.T @ dh)")


def _tanh_forward(x, w):
    h = x @ w
    y = h.tanh()
    loss = y.sum()
    return loss


def _carried_forwards():
    """The three ways a forward carries a parameter of the caller's: a bound module, a partial, a default."""
    model = Carried()
    w = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    default = types.FunctionType(_tanh_forward.__code__, globals(), "with_default", (w,))
    return {
        "bound method": (model.forward, model.w),
        "partial": (functools.partial(_tanh_forward, w=w), w),
        "tensor default": (default, w),
        "decorated tensor default": (torch.enable_grad()(default), w),
    }


@pytest.mark.parametrize("kind", ["bound method", "partial", "tensor default", "decorated tensor default"])
def test_a_parameter_carried_by_the_forward_is_copied_for_each_check(kind):
    """The caller's own tensor was used: its .grad summed over checks, so the second check judged against twice
    the gradient (a doubled dw passed, then the right one failed) and check() wrote the caller's .grad."""
    forward, parameter = _carried_forwards()[kind]
    graph = Graph("carried", forward, lambda: {"x": torch.randn(4, 3, generator=torch.Generator().manual_seed(0))})
    assert check(graph, CARRIED_RIGHT).passed
    assert check(graph, CARRIED_DOUBLED)["w"].status == "mismatch"
    assert check(graph, CARRIED_RIGHT).passed
    assert parameter.grad is None
    assert check(graph, CARRIED_RIGHT, dtype="float64").passed, "the carried parameter is cast with the cell"


def returns_total(x, w):
    h = x @ w
    y = h.tanh()
    total = y.sum()
    return total


def renames_total(x, w):
    h = x @ w
    y = h.tanh()
    total = y.sum()
    loss = total
    return loss


@pytest.mark.parametrize("forward", [returns_total, renames_total])
def test_the_loss_under_another_name_is_no_variable(forward):
    """The returned loss bound as ``total`` was a checked variable: a right backward failed 'no dtotal was
    assigned'; one that gives dtotal = 1 anyway has no extra row."""
    backward = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh\n"
    report = check(Graph("total", forward, _xw), backward)
    assert report.passed and [row.variable for row in report.rows] == ["y", "h", "w"], report.to_table()
    report = check(Graph("total", forward, _xw), "dtotal = torch.ones(())\n" + backward)
    assert report.passed and [row.variable for row in report.rows] == ["y", "h", "w"], report.to_table()


def _scaled(function):
    """A user's decorator that changes the result: the loss times 3."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return 3 * function(*args, **kwargs)

    return wrapper


@_scaled
def scaled_forward(x, w):
    h = x @ w
    y = h.tanh()
    loss = y.sum()
    return loss


@torch.enable_grad()
def grad_enabled(x, w):
    h = x @ w
    y = h.tanh()
    loss = y.sum()
    return loss


def _registered(function):
    """A registering decorator that returns the function itself, marked as wrapping itself."""
    return functools.wraps(function)(function)


@_registered
def registered(x, w):
    h = x @ w
    y = h.tanh()
    loss = y.sum()
    return loss


TANH_BACKWARD = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh\n"


@pytest.mark.parametrize("forward", [grad_enabled, registered])
def test_torchs_own_decorators_and_a_function_wrapping_itself_have_their_steps_captured(forward):
    """@torch.enable_grad()'s wrapper was what got rewritten: no step was captured and every row read 'y is not
    defined'; a function whose __wrapped__ is itself made inspect loop ('wrapper loop')."""
    report = check(Graph("decorated", forward, _xw), TANH_BACKWARD)
    assert report.passed and [row.variable for row in report.rows] == ["y", "h", "w"], report.to_table()


def test_any_other_decorator_is_refused_naming_the_undecorated_function():
    """Following __wrapped__ skipped the decorator's work: the loss scaled by 3 was lost, a backward without the 3
    passed and the right one failed. The wrapper cannot be seen through: the check says what to pass instead."""
    for backward in (TANH_BACKWARD, TANH_BACKWARD.replace("torch.ones_like(y)", "3 * torch.ones_like(y)")):
        report = check(Graph("scaled", scaled_forward, _xw), backward)
        assert not report.passed and report.rows[0].status == "error", report.to_table()
        assert "scaled_forward.__wrapped__" in report.rows[0].message and "wrapper()" in report.rows[0].message


def names_a_local_locals(x, w):
    locals = [x]  # noqa: A001 - a student's name for a list of layers' outputs
    h = locals[0] @ w
    y = h.tanh()
    loss = y.sum()
    return loss


def test_a_forward_local_named_locals_does_not_break_capture():
    """The rewritten forward called locals() by name: a local of that name made it "TypeError: 'list' object is
    not callable" at the def line."""
    backward = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh\n"
    report = check(Graph("locals", names_a_local_locals, _xw), backward)
    assert report.passed and [row.variable for row in report.rows] == ["y", "h", "w"], report.to_table()


def runs_its_own_backward(x, w):
    h = x @ w
    y = h.tanh()
    loss = y.sum()
    loss.backward()
    return loss


def test_a_forward_that_runs_the_backward_itself_is_told_to_remove_it():
    """The lecture's forward cell pasted with its loss.backward(): torch's 'Specify retain_graph=True' was the
    message, advice that is wrong here."""
    report = check(Graph("pasted", runs_its_own_backward, _xw), "dy = torch.ones_like(y)")
    assert report.rows[0].status == "error", report.to_table()
    assert "remove its loss.backward()" in report.rows[0].message and "retain_graph" not in report.rows[0].message


class Scaled(nn.Module):
    """A module reading a private attribute (``self.__scale`` is stored as ``_Scaled__scale``)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))
        self.__scale = 2.0

    def forward(self, x):
        h = x @ self.w * self.__scale
        y = h.tanh()
        loss = y.sum()
        return loss


def test_a_module_forward_reading_a_private_attribute_is_captured():
    """Recompiled outside its class, self.__scale lost its mangling: an error row claiming the file had been
    edited since it was imported."""
    backward = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh * 2.0\n"
    report = check(Graph("private", Scaled(), lambda: {"x": torch.randn(4, 3)}), backward)
    assert report.passed and [row.variable for row in report.rows] == ["y", "h", "w"], report.to_table()


def deletes_a_step(x, w):
    h = x @ w
    y = h.tanh()
    del h
    loss = y.sum()
    return loss


def test_a_step_the_forward_deletes_is_still_given_to_the_backward():
    """``del h`` (to free memory) left h captured and checked but missing from the backward's names: a right
    backward reading h failed with NameError."""
    backward = "dy = torch.ones_like(y)\ndh = (1 - torch.tanh(h)**2) * dy\ndw = x.T @ dh\n"
    report = check(Graph("deleted", deletes_a_step, _xw), backward)
    assert report.passed and [row.variable for row in report.rows] == ["y", "h", "w"], report.to_table()


class KeepsActivation(nn.Module):
    """makemore part 3's layers keep their output (``self.out``): a non-leaf tensor once the module has run."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))

    def forward(self, x):
        self.out = x @ self.weight
        h = self.out
        y = h.tanh()
        loss = y.sum()
        return loss


def uses_a_kept_activation_module(x, layer):
    h = layer.weight.T @ x.T
    y = h.tanh()
    loss = y.sum()
    return loss


def test_a_module_that_already_ran_and_keeps_its_activation_is_checked():
    """deepcopy refused the module's non-leaf self.out: every check of a module trained before it (as in the
    notebook) was one error row, 'Only Tensors created explicitly by the user support the deepcopy protocol'."""
    module = KeepsActivation()
    module(torch.randn(4, 3))
    x = lambda: {"x": torch.randn(4, 3, generator=torch.Generator().manual_seed(0))}  # noqa: E731
    own = check(Graph("own", module, x), "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndweight = x.T @ dh\n")
    assert own.passed and [row.variable for row in own.rows] == ["y", "h", "weight"], own.to_table()
    graph = Graph("input", uses_a_kept_activation_module, lambda: {**x(), "layer": module})
    held = check(graph, "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndlayer = {'weight': (dh @ x).T}\n")
    assert held.passed and [row.variable for row in held.rows] == ["y", "h", "layer.weight"], held.to_table()


class Step(nn.Module):
    """A module whose forward method is named like its class (a class shell named Step holds a method Step)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))

    def Step(self, x):  # noqa: N802 - named like its class on purpose
        h = x @ self.w
        y = h.tanh()
        loss = y.sum()
        return loss

    forward = Step


def filters_with_a_walrus(x, w):
    h = x @ w
    kept = [z for j in range(h.shape[1]) if (z := h[:, j].tanh()) is not None]
    y = torch.stack(kept, 1)
    loss = y.sum()
    return loss


def frees_a_step(x, w):
    h = x @ w
    y = h.tanh()
    h = None
    loss = y.sum()
    return loss


@pytest.mark.parametrize(
    ("graph", "backward"),
    [
        (Graph("named-like-class", Step(), lambda: {"x": torch.randn(4, 3)}), TANH_BACKWARD),
        (Graph("walrus-filter", filters_with_a_walrus, _xw), TANH_BACKWARD),
        (Graph("freed", frees_a_step, _xw), TANH_BACKWARD.replace("1 - y**2", "1 - torch.tanh(h)**2")),
    ],
    ids=["method named like its class", "walrus in a comprehension", "h = None after use"],
)
def test_forwards_the_regression_review_found_pass_with_a_right_backward(graph, backward):
    """Each failed a right backward after today's capture changes: the class shell's body code was taken for the
    method ('does not match the code that runs'), a comprehension's walrus z was a step ('no dz was assigned'), and
    h = None handed the backward None for a captured step."""
    report = check(graph, backward)
    assert report.passed, report.to_table()


def returns_through_a_walrus(x, w):
    h = x @ w
    return (y := h.tanh()).sum()  # noqa: F841 - y is a step the backward reads


def test_a_step_bound_by_a_walrus_in_the_return_is_checked():
    """``return (y := h.tanh()).sum()``: y was bound where nothing observed it, so a 5x wrong dy could only be a
    failing row saying capture did not see it; it is a step like any other."""
    right = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh\n"
    returning = Graph("return-walrus", returns_through_a_walrus, _xw)
    report = check(returning, right)
    assert report.passed and [r.variable for r in report.rows] == ["y", "h", "w"], report.to_table()
    wrong = check(returning, right.replace("dy = torch.ones_like(y)", "dy = 5 * torch.ones_like(y)"))
    assert wrong["y"].status == "mismatch" and [r.variable for r in wrong.rows if r.root_cause] == ["y"]


def test_a_gradient_of_a_step_capture_did_not_see_bound_fails_saying_so():
    """A walrus in a comprehension binds z once per element, no step: a dz given cannot be judged, and passing
    it would be a guess."""
    given = "dy = torch.ones_like(y)\ndz = 5 * torch.ones_like(z)\ndh = 1 - y**2\ndw = x.T @ dh\n"
    row = check(Graph("comprehension-walrus", filters_with_a_walrus, _xw), given)["dz"]
    assert row.status == "graph" and "capture did not see it bound" in row.message, row.message


def test_a_parameter_a_partial_binds_by_position_is_checked():
    """functools.partial(forward, x, W): w was never observed, so its gradient was never judged."""
    w = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    graph = Graph("positional", functools.partial(_tanh_forward, x, w), dict)
    assert check(graph, CARRIED_RIGHT).passed
    assert check(graph, CARRIED_DOUBLED)["w"].status == "mismatch"


class SharesWithAnInput(nn.Module):
    """A forward module whose layer shares its weight with a module given among the inputs."""

    def __init__(self, encoder):
        super().__init__()
        self.lin = nn.Linear(3, 2, bias=False)
        self.lin.weight = encoder.weight

    def forward(self, x, enc):
        h = enc(x)
        a = h.tanh()
        y = self.lin(x) * a
        loss = y.sum()
        return loss


def test_a_weight_the_forward_module_shares_with_an_input_module_is_one_parameter():
    """The forward and the inputs were copied with two memos: autograd saw two parameters, and the right total
    gradient of the shared weight failed on both names."""
    torch.manual_seed(0)
    encoder = nn.Linear(3, 2, bias=False)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    both = (
        "dy = torch.ones_like(y)\nda = h * dy\ndh = (1 - a**2) * da\ndW = dh.T @ x + (a * dy).T @ x\n"
        "denc = {'weight': dW}\ndlin = {'weight': dW}\n"
    )
    report = check(Graph("shared", SharesWithAnInput(encoder), lambda: {"x": x, "enc": encoder}), both)
    assert report["enc.weight"].status == "ok" and report["lin.weight"].status == "ok", report.to_table()


class _Transposing(nn.Module):
    """A module whose forward names a local like its own parameter, as nn.Linear-style code often does."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(3, 4, generator=g))
        self.bias = nn.Parameter(torch.randn(3, generator=g))

    def forward(self, x):
        weight = self.weight.t()
        out = x @ weight + self.bias
        loss = (out**2).sum()
        return loss


def test_a_local_named_like_the_modules_own_parameter_shadows_it_and_the_parameter_is_checked():
    """``weight = self.weight.t()``: ``dweight`` is the parameter's gradient (nothing else checks it); the local
    is read by the backward as the forward left it. It was a failing graph row ("bound to more than one tensor")."""
    module_graph = Graph("shadow", _Transposing(), lambda: {"x": torch.randn(2, 4, generator=torch.Generator())})
    right = "dout = 2 * out\ndbias = dout.sum(0)\ndweight = (x.T @ dout).T\n"
    report = check(module_graph, right)
    assert report.passed, [(r.variable, r.status, r.message) for r in report.failures]
    assert [r.variable for r in report.rows] == ["out", "weight", "bias"]
    wrong = check(module_graph, right.replace("dweight = (x.T @ dout).T", "dweight = x.T @ dout"))  # the local's
    assert wrong["weight"].status == "shape", wrong["weight"].message
    transposed_twice = check(module_graph, right.replace("(x.T @ dout).T", "(x.T @ dout).T * 1.5"))
    assert transposed_twice["weight"].status == "mismatch"


def _asserting(x, w):
    assert x.shape[1] == w.shape[0], "x and w do not chain"
    h = x @ w
    y = torch.tanh(h)
    loss = y.sum()
    return loss


def test_a_forward_with_an_assert_in_a_test_module_is_captured():
    """pytest rewrites a test module's asserts (names, constants and lines of its own): the forward's source no
    longer matched its code and capture refused it as 'edited after it was imported'."""
    assert "@py_builtins" in _asserting.__code__.co_names or "@pytest_ar" in _asserting.__code__.co_names
    report = check(Graph("asserting", _asserting, _xw), TANH_BACKWARD)
    assert report.passed and [r.variable for r in report.rows] == ["y", "h", "w"], report.to_table()
