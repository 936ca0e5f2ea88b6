"""The notebook face as students use it, in a real Jupyter kernel (nbclient + ipykernel): the lecture's forward
cell put under ``%%forward`` as it is, its ``retain_grad`` loop and ``loss.backward()`` kept, and a ``%%backward``
cell run before any ``%%forward``. The first captured nothing ('remove its loss.backward()'), left the forward's
names unbound and every later cell a NameError; the second did not run its cell, so the next cells failed too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

nbclient = pytest.importorskip("nbclient", reason="the dev extra installs nbclient")
pytest.importorskip("ipykernel", reason="the dev extra installs ipykernel")

ROOT = Path(__file__).resolve().parents[1]
MAKEMORE = ROOT / "examples" / "makemore"
SOLUTION = MAKEMORE / "backprop_ninja_solution.ipynb"
KERNEL = "gradcheck-kit-students"
PARAMETERS = "C, W1, b1, W2, b2, bngain, bnbias"
RETAINED = "logprobs, probs, counts, counts_sum, counts_sum_inv, norm_logits, logit_maxes, logits, h, hpreact, bnraw"
LECTURE_TAIL = (
    f"\n# PyTorch backward pass\nfor p in [{PARAMETERS}]:\n  p.grad = None\n"
    f"for t in [{RETAINED}, bnvar_inv, bnvar, bndiff2, bndiff, hprebn, bnmeani, embcat, emb]:\n  t.retain_grad()\n"
    "loss.backward()\nloss"
)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory):
    """A kernelspec running this interpreter, found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        yield KERNEL


def _run(kernel: str, *sources: str) -> list[str]:
    """Run the cells top to bottom in examples/makemore; each cell's text output."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name=kernel, allow_errors=True, resources={"metadata": {"path": str(MAKEMORE)}}
    )
    client.execute()
    return ["".join(_text(output) for output in cell.outputs) for cell in notebook.cells]


def _text(output: dict) -> str:
    if output["output_type"] == "stream":
        return output["text"]
    if output["output_type"] == "error":
        return f"{output['ename']}: {output['evalue']}\n"
    return output.get("data", {}).get("text/plain", "") + "\n"


def _solution_cell(start: str) -> str:
    return next(cell.source for cell in nbformat.read(SOLUTION, 4).cells if cell.source.startswith(start))


def test_the_lectures_forward_cell_under_forward_is_captured_with_its_backward_left_out(kernel: str) -> None:
    forward = _solution_cell("%%forward\nemb")
    backward = _solution_cell("# Exercise 1")
    shown = _run(
        kernel,
        "%load_ext gradcheck_kit\nimport torch\nimport torch.nn.functional as F\nfrom model import make_inputs\n"
        "globals().update(make_inputs())",
        forward + LECTURE_TAIL,
        "%%backward\n" + backward,
        "print(logits.shape, dlogits.shape)",
    )
    tail = forward.count("\n") + 3  # the magic's line is line 1; the tail begins with a blank line and a comment
    assert shown[1].startswith(f"%%forward: the cell's backward (lines {tail}, {tail + 2}, {tail + 4}) is left out")
    assert "%%forward: 26 variables captured" in shown[1] and "cannot check" not in shown[1]
    assert "%%backward [cpu-float32]: 26/26 ok" in shown[2]
    assert shown[3] == "torch.Size([32, 27]) torch.Size([32, 27])\n"


def test_a_backward_cell_with_nothing_captured_still_runs(kernel: str) -> None:
    shown = _run(kernel, "%load_ext gradcheck_kit\nimport torch", "%%backward\ndx = torch.ones(3)", "print(dx.sum())")
    assert shown[1] == "%%backward: nothing to check against: run the forward cell under %%forward first\n"
    assert shown[2] == "tensor(3.)\n"


def test_a_backward_cell_that_stops_reports_the_gradients_it_did_not_reach(kernel: str) -> None:
    setup = (
        "%load_ext gradcheck_kit\nimport torch\ng = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(4, 3, generator=g)\nw = torch.randn(3, 2, generator=g, requires_grad=True)"
    )
    forward = "%%forward\nh = x @ w\ny = h.tanh()\nloss = y.sum()"
    typo = "%%backward\ndy = torch.ones_like(y)\ndh = (1 - y**2) * dyy\ndw = x.T @ dh"
    shown = _run(kernel, setup, forward, typo)
    assert "%%backward [cpu-float32]: 1/3 ok" in shown[2]
    assert "every gradient had been assigned" not in shown[2]
    assert "no dw: the backward stopped before assigning it (NameError: name 'dyy' is not defined" in shown[2]


def test_cmp_with_its_tensors_the_other_way_round_says_so(kernel: str) -> None:
    setup = (
        "import torch\nfrom gradcheck_kit.notebook import cmp\ng = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(4, 3, generator=g)\nw = torch.randn(3, 2, generator=g, requires_grad=True)\n"
        "h = x @ w\nh.retain_grad()\nloss = h.tanh().sum()\nloss.backward()"
    )
    swapped = "dh = 1 - h.detach().tanh()**2\ncmp('h', h, dh)"
    shown = _run(kernel, setup, swapped)
    assert (
        "h               | NOT CHECKED: the second argument holds a .grad and the third none: the call is "
        in (shown[1])
    )
    assert "cmp('h', dh, h)" in shown[1] and "call h.retain_grad()" not in shown[1]


def test_a_backward_cell_that_does_not_parse_says_so_and_runs_nothing(kernel: str) -> None:
    """A tab pasted into a ``%%backward`` cell: Jupyter runs nothing of a cell that does not parse, yet the check
    said 'every gradient had been assigned and is judged as it stood'. It says the cell does not parse, where, and
    keeps what the notebook held (``dh`` of the cell before)."""
    setup = (
        "%load_ext gradcheck_kit\nimport torch\ng = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(4, 3, generator=g)\nw = torch.randn(3, 2, generator=g, requires_grad=True)"
    )
    forward = "%%forward\nh = x @ w\ny = h.tanh()\nloss = y.sum()"
    right = "%%backward\ndy = torch.ones_like(y)\ndh = (1 - y**2) * dy"
    tabbed = "%%backward\ndh = torch.zeros_like(h)\n\tdw = x.T @ dh"
    shown = _run(kernel, setup, forward, right, tabbed, "print(bool((dh != 0).all()))")
    assert "%%backward [cpu-float32]: 2/2 ok" in shown[2]
    assert shown[3] == (
        "%%backward: the cell does not parse, so nothing in it ran: IndentationError: unexpected indent (line 3)\n"
    )
    assert shown[4] == "True\n"


def test_cmp_given_the_gradient_or_a_detached_copy_as_third_argument_says_which(kernel: str) -> None:
    """``cmp('h', dh, h.grad)`` (two gradients compared) and ``cmp('h', dh, h.detach())``: each said 'h has no .grad:
    call h.retain_grad() before loss.backward()', untrue of the notebook's h, and the cell's table said 'no cmp
    call since the cell began'."""
    setup = (
        "import torch\nfrom gradcheck_kit.notebook import cmp\ng = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(4, 3, generator=g)\nw = torch.randn(3, 2, generator=g, requires_grad=True)\n"
        "h = x @ w\nh.retain_grad()\nloss = h.tanh().sum()\nloss.backward()\ndh = 1 - h.detach().tanh()**2"
    )
    shown = _run(kernel, setup, "cmp('h', dh, h.grad)", "cmp('h', dh, h.detach())")
    assert shown[1].startswith(
        "h               | NOT CHECKED: the third argument is h.grad, the gradient itself: "
        "the call is cmp('h', dh, h)\n"
    )
    assert shown[2].startswith(
        "h               | NOT CHECKED: the third argument is h without its .grad (a .detach() or .data of it): "
        "pass h itself\n"
    )
    assert all("cmp [cpu-float32]: skipped: nothing checked: h not checked (above)" in text for text in shown[1:])
