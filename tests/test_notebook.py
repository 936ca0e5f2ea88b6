"""The notebook face without a kernel: the drop-in ``cmp`` on a lecture-style notebook state, the
capture it builds from tensors, and the forward lines it finds in a notebook's cells."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gradcheck_kit import Graph, capture
from gradcheck_kit.notebook import Cmp
from gradcheck_kit.notebook.reads import reads
from gradcheck_kit.notebook.sources import from_cells
from gradcheck_kit.notebook.tensors import capture_of

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"
sys.path.insert(0, str(MAKEMORE))

from model import forward, make_inputs  # noqa: E402


def run_exercise1(old: str = "", new: str = ""):
    """The state after the lecture's forward cell (every tensor retained, loss.backward()) and Exercise 1,
    with ``old`` replaced by ``new`` in the reference backward."""
    captured = capture(Graph("makemore", forward, make_inputs))
    namespace = {"torch": torch, "F": F, "cmp": lambda *_: None, **captured.namespace}
    source = (MAKEMORE / "backward_ex1.py").read_text()
    assert old in source
    exec(compile(source.replace(old, new), "backward_ex1.py", "exec"), namespace)
    return captured, namespace


@pytest.fixture(scope="module")
def lecture():
    return run_exercise1()


def calls(lecture, **planted):
    """The 26 (name, manual, tensor) cmp calls in the lecture's order; ``planted`` replaces manual gradients."""
    captured, namespace = lecture
    return [(name, planted.get(name, namespace[f"d{name}"]), captured.namespace[name]) for name in captured.variables]


def test_a_right_gradient_prints_the_lecture_line(lecture, capsys):
    checked = Cmp(defer=False)
    _, namespace = lecture
    checked("logprobs", namespace["dlogprobs"], namespace["logprobs"])
    assert capsys.readouterr().out == "logprobs        | exact: True  | approximate: True  | maxdiff: 0.0\n"


def test_a_broadcasting_shape_is_flagged_where_the_lecture_cmp_says_exact(lecture, capsys):
    _, namespace = lecture
    bnbias = namespace["bnbias"]
    flat = bnbias.grad.view(-1)
    assert torch.all(flat == bnbias.grad).item()  # what the lecture's cmp computes: exact True
    Cmp(defer=False)("bnbias", flat, bnbias)
    out = capsys.readouterr().out
    assert out.startswith("bnbias          | exact: False | approximate: False")
    assert "SHAPE: expected shape (1, 64), got (64,)" in out
    assert "keepdim=True" in out


def test_the_report_is_in_backprop_order_with_the_root_cause(capsys):
    flipped = run_exercise1("dlogprobs[range(n), Yb] = -1.0 / n", "dlogprobs[range(n), Yb] = 1.0 / n")
    captured, _ = flipped
    checked = Cmp(defer=False)
    for name, manual, tensor in calls(flipped):
        checked(name, manual, tensor)
    lines = capsys.readouterr().out.splitlines()
    report = checked.report()
    assert [row.variable for row in report.rows] == list(captured.variables)
    assert [row.variable for row in report.rows if row.root_cause] == ["logprobs"]
    assert report["logprobs"].hint == "sign flipped: manual ≈ -autograd"
    assert report["probs"].caused_by == "logprobs"
    assert "hint: sign flipped" in lines[0]
    assert lines[1].endswith("| follows from logprobs")


def test_deferred_lines_come_from_one_evaluation_at_the_end_of_the_cell(lecture, capsys):
    _, namespace = lecture
    checked = Cmp(defer=True)
    for name, manual, tensor in calls(lecture, b2=namespace["db2"].unsqueeze(0)):
        checked(name, manual, tensor)
    assert capsys.readouterr().out == ""
    report = checked.end_of_cell()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 26 and lines[0].startswith("logprobs ")
    assert report.summary() == "cmp [cpu-float32]: 25/26 ok, root cause: b2"
    b2 = next(text for text in lines if text.startswith("b2 "))
    assert "SHAPE: expected shape (27,), got (1, 27)" in b2 and "hint: right values in the wrong shape" in b2
    assert checked.end_of_cell() is None  # the cell's pairs are forgotten


def test_two_tensors_under_one_label_are_both_checked(lecture, capsys):
    _, namespace = lecture
    checked = Cmp(defer=True)
    for name in ("bngain", "bnbias"):  # the lecture's Exercise 4 check labels both "(1, 64)"
        tensor = namespace[name]
        checked(str(tuple(tensor.shape)), namespace[f"d{name}"] if name == "bngain" else -tensor.grad, tensor)
    report = checked.end_of_cell()
    lines = capsys.readouterr().out.splitlines()
    assert [row.variable for row in report.rows] == ["(1, 64)", "(1, 64) #2"]
    assert [row.status for row in report.rows] == ["ok", "mismatch"]
    assert lines[0].startswith("(1, 64)         | exact: ") and "sign flipped" in lines[1]


def test_a_tensor_without_grad_is_not_checked_and_says_why(capsys):
    checked = Cmp(defer=False)
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    checked("y", torch.ones(3), y)
    out = capsys.readouterr().out
    assert "NOT CHECKED: y has no .grad: call y.retain_grad() before loss.backward()" in out
    report = checked.report()
    assert [row.status for row in report.rows] == ["skipped"]
    assert "nothing checked: y not checked" in report.summary()


def test_capture_of_orders_and_links_tensors_as_the_library_capture_does(lecture):
    captured, _ = lecture
    shuffled = dict(sorted(captured.namespace.items()))
    tensors = {name: shuffled[name] for name in shuffled if name in captured.variables}
    built = capture_of(tensors, captured.namespace, {})
    assert list(built.variables) == list(captured.variables)
    for name, variable in captured.variables.items():
        assert set(built.variables[name].consumers) == set(variable.consumers), name


def test_forward_lines_come_from_the_latest_cell_that_binds_each_name():
    cells = ["x = 1\ncounts = a.exp()", "not python (", "for i in range(3):\n    counts = 0\ncounts = b.exp()  # new"]
    assert from_cells(cells, ["counts", "x", "y"]) == {"counts": (3, "counts = b.exp()  # new"), "x": (1, "x = 1")}


@pytest.mark.parametrize(
    ("code", "taken"),
    [
        ("h = x @ w\ny = h.tanh()", ["x", "w"]),
        ("h = h + 1\ndh += dz", ["h", "dh", "dz"]),
        ("for t in ts:\n    y = t * 2\n    acc = acc + y", ["ts", "acc"]),
        ("ys = [t * w for t in ts]\nz = t", ["ts", "w", "t"]),
        ("def f(a):\n    return a @ w + b\nb = 1\ny = f(x)", ["x", "w"]),
        ("import torch.nn.functional as F\ny = F.relu(x)", ["x"]),
        ("y = (", []),
    ],
)
def test_a_cell_takes_the_names_it_reads_before_it_binds_them(code, taken):
    assert reads(code) == taken


def test_importing_the_notebook_face_does_not_import_ipython():
    code = "import sys, gradcheck_kit, gradcheck_kit.notebook; print('IPython' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_backward_cell_too_deep_to_parse_is_said_without_a_line():
    """A parse that fails on nesting alone has no line: the message read '(line None)'."""
    from gradcheck_kit.notebook.magics import _syntax_error

    assert (
        _syntax_error("x = 1" + " + 1" * 5000)
        == "SyntaxError: the source nests too deeply to be parsed (RecursionError)"
    )
    assert _syntax_error("  dh = 2 * h") == "IndentationError: unexpected indent (line 1)"
