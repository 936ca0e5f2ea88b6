"""The backward runner (gradcheck_kit/manual.py) at the level a user meets it: check() with a small graph."""

import sys
import threading
import time

import nbformat
import pytest
import torch
from torch import nn

from gradcheck_kit import Graph, NotebookCell, check


def _seeded(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class KeepsActivation(nn.Module):
    """A layer that keeps its output on itself for plotting, as makemore part 3's layers do."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(_seeded(3, 2, seed=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.out = x @ self.weight
        return self.out


class KeepsActivationNet(nn.Module):
    """The forward as a module whose layer keeps its activation."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = KeepsActivation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        y = h.tanh()
        loss = y.sum()
        return loss


def through_layer(x: torch.Tensor, lin: nn.Module) -> torch.Tensor:
    h = lin(x)
    y = h.tanh()
    loss = y.sum()
    return loss


TANH_BACKWARD = "dy = torch.ones_like(y)\ndh = (1 - y**2) * dy\n"


def test_a_module_input_keeping_its_activation_is_checked():
    graph = Graph("keeps", through_layer, lambda: {"x": _seeded(4, 3), "lin": KeepsActivation()})
    report = check(graph, TANH_BACKWARD + "dlin = {'weight': x.T @ dh}\n")
    assert [(row.variable, row.status) for row in report.rows] == [("y", "ok"), ("h", "ok"), ("lin.weight", "ok")]


def test_a_forward_module_keeping_an_activation_shares_its_copy_with_the_named_value():
    shared = "assert self.lin.out is h, 'expected self.lin.out to be the copy of h'\n"
    report = check(Graph("keeps-self", KeepsActivationNet(), lambda: {"x": _seeded(4, 3)}), shared + TANH_BACKWARD)
    assert {row.variable: (row.status, row.message) for row in report.rows if row.variable != "lin.weight"} == {
        "y": ("ok", ""),
        "h": ("ok", ""),
    }


class KeepsLock(nn.Module):
    """A layer that keeps something deepcopy refuses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.lock = threading.Lock()
        return x * 2


def through_locked(x: torch.Tensor, lin: nn.Module) -> torch.Tensor:
    h = lin(x)
    loss = h.sum()
    return loss


def test_a_value_that_cannot_be_copied_for_the_backward_is_an_error_row():
    x = _seeded(3).requires_grad_()
    report = check(Graph("lock", through_locked, lambda: {"x": x, "lin": KeepsLock()}), "dh = torch.ones_like(h)\n")
    [row] = report.rows
    assert row.status == "error"
    assert "could not copy the forward's 'lin' for the backward: TypeError" in row.message


def tanh_inputs() -> dict[str, torch.Tensor]:
    return {"x": _seeded(4, 3), "w": _seeded(3, 2, seed=1).requires_grad_()}


def tanh_layer() -> Graph:
    """``loss = tanh(x @ w).sum()``, w the leaf."""
    return Graph("tanh", "h = x @ w\ny = h.tanh()\nloss = y.sum()\n", tanh_inputs)


def test_a_backward_function_taking_positional_only_parameters_gets_them():
    def backward(x, y, /, w, **rest):
        dy = torch.ones_like(y)
        dh = (1 - y**2) * dy
        assert "x" not in rest, "expected x only by position"
        return {"dy": dy, "dh": dh, "dw": x.T @ dh}

    report = check(tanh_layer(), backward)
    assert [(row.variable, row.status, row.message) for row in report.rows] == [
        ("y", "ok", ""),
        ("h", "ok", ""),
        ("w", "ok", ""),
    ]


TIMED_BACKWARD = """# Exercise 1
dy = torch.ones_like(y)
dh = %time (1 - y**2) * dy
%time dw = x.T @ dh
"""


def test_a_time_line_magic_runs_its_statement_in_a_notebook_cell(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(TIMED_BACKWARD)]
    nbformat.write(notebook, tmp_path / "hw.ipynb")
    report = check(tanh_layer(), NotebookCell(tmp_path / "hw.ipynb", marker="# Exercise 1"))
    assert [(row.variable, row.status, row.message) for row in report.rows] == [
        ("y", "ok", ""),
        ("h", "ok", ""),
        ("w", "ok", ""),
    ]


def test_a_time_line_magic_keeps_its_line_and_options_in_a_code_string():
    code = TIMED_BACKWARD.replace("%time dw", "if True:\n    %time --no-raise-error dw") + "1 / 0\n"
    report = check(tanh_layer(), code)
    assert [row.status for row in report.rows] == ["ok", "ok", "ok", "error"]
    assert "ZeroDivisionError: division by zero at line 6: `1 / 0`" in report.rows[-1].message


def test_a_timeit_line_magic_binds_nothing_as_in_ipython():
    code = TIMED_BACKWARD.replace("%time dw", "%timeit -n 3 -r 1 dw")
    report = check(tanh_layer(), code)
    assert {row.variable: row.message for row in report.rows if row.status != "ok"} == {"w": "no dw was assigned"}


SWALLOWING_LOOP = """
import time
started = time.monotonic()
dy = torch.ones_like(y)
while time.monotonic() - started < 10:  # stands for `while True:`, which never ends
    try:
        dh = (1 - y**2) * dy
    except:
        pass
dw = x.T @ dh
"""


def swallowing_function(x, y):
    started = time.monotonic()
    dy = torch.ones_like(y)
    while time.monotonic() - started < 10:  # stands for `while True:`, which never ends
        try:  # noqa: SIM105 - the point: a bare except swallows the timeout
            dh = (1 - y**2) * dy
        except:  # noqa: E722
            pass
    return {"dy": dy, "dh": dh, "dw": x.T @ dh}


@pytest.mark.parametrize("backward", [SWALLOWING_LOOP, swallowing_function], ids=["code", "function"])
def test_a_backward_swallowing_the_timeout_in_a_bare_except_is_still_stopped(backward):
    started = time.monotonic()
    report = check(tanh_layer(), backward, timeout=0.5)
    assert time.monotonic() - started < 5, "expected the backward stopped about at its timeout"
    assert report["w"].status == "missing" and "ran past its timeout" in report["w"].message


def test_a_backward_that_swallowed_the_timeout_and_returned_still_ran_past_it():
    code = "import time\ntry:\n    time.sleep(1)\nexcept:\n    pass\ndy = torch.ones_like(y)\n"
    report = check(tanh_layer(), code, timeout=0.2)
    assert any("ran past its timeout" in row.message for row in report.rows), report.rows


def test_a_backward_setting_the_default_dtype_leaves_it_as_it_was():
    before = torch.get_default_dtype()
    other = torch.float32 if before == torch.float64 else torch.float64
    try:
        check(tanh_layer(), f"torch.set_default_dtype({other})\ndy = torch.ones_like(y)\n")
        assert torch.get_default_dtype() == before, "expected the default dtype put back after the backward"
    finally:
        torch.set_default_dtype(before)


def test_a_backward_file_imports_a_module_beside_it(tmp_path):
    (tmp_path / "manual_runner_helper.py").write_text("def tanh_backward(y, dy):\n    return (1 - y**2) * dy\n")
    backward = tmp_path / "backward.py"
    backward.write_text(
        "from manual_runner_helper import tanh_backward\n"
        "dy = torch.ones_like(y)\ndh = tanh_backward(y, dy)\ndw = x.T @ dh\n"
    )
    path_before = list(sys.path)
    try:
        report = check(tanh_layer(), backward)
    finally:
        sys.modules.pop("manual_runner_helper", None)
    assert [(row.variable, row.status, row.message) for row in report.rows] == [
        ("y", "ok", ""),
        ("h", "ok", ""),
        ("w", "ok", ""),
    ]
    assert sys.path == path_before, "expected the backward's folder taken off sys.path after it ran"


def test_a_tagged_writefile_cell_is_not_run_as_the_backward(tmp_path):
    """Jupyter writes a %%writefile cell's body to a file and does not run it; the backward ran it (the grader,
    36406cf, already did not), so a gradient the notebook never computed was judged."""

    def inputs():
        return {"x": _seeded(4, 3), "w": _seeded(3, 2, seed=1).requires_grad_()}

    def forward(x, w):
        h = x @ w
        loss = h.sum()
        return loss

    notebook = nbformat.v4.new_notebook()
    for source in ("%%writefile grads.py\ndh = torch.ones_like(h)", "dw = x.T @ torch.ones(4, 2)"):
        notebook.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": ["backward"]}))
    path = tmp_path / "hw.ipynb"
    nbformat.write(notebook, path)
    report = check(Graph("writefile", forward, inputs), NotebookCell(path, tag="backward"))
    assert (report["h"].status, report["w"].status) == ("missing", "ok"), report.to_table()


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_a_backward_file_saved_in_a_windows_encoding_is_read(tmp_path, encoding):
    """A comment saved as Latin-1 (or cp1252, or Notepad's UTF-16) failed every row: 'the backward could not be
    read: UnicodeDecodeError'; the grader reads such a submission."""
    backward = tmp_path / "backward.py"
    code = "# gradient über tanh: (1 - y²) · dy\ndy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh\n"
    backward.write_bytes(code.encode(encoding))
    report = check(tanh_layer(), backward)
    assert [(row.variable, row.status) for row in report.rows] == [("y", "ok"), ("h", "ok"), ("w", "ok")]
