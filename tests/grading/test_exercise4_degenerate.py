"""Exercise 4 judged at parameters where a gradient cannot be wrong: a training cell that starts from ``W2`` all zeros
stops every gradient below the output layer, so autograd's ``dW1``, ``db1``, ``dC``, ``dbngain`` and ``dbnbias`` are
zero everywhere and ``torch.zeros_like`` answers matched them (7/7 with no backward written below the output layer).
Such a gradient is ``unchecked`` and earns nothing; the end-to-end test runs `gradcheck-kit grade` in its own process.
"""

from __future__ import annotations

import json
from pathlib import Path

from grading_support import ROOT, Run, grade_command

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
INIT = "C, W1, b1, W2, b2, bngain, bnbias = init_params(n_hidden, g).values()\n"
ZEROS = {
    "dbngain = (bnraw * dhpreact).sum(0, keepdim=True)": "dbngain = torch.zeros_like(bngain)",
    "dbnbias = dhpreact.sum(0, keepdim=True)": "dbnbias = torch.zeros_like(bnbias)",
    "dW1 = embcat.T @ dhprebn": "dW1 = torch.zeros_like(W1)",
    "db1 = dhprebn.sum(0)": "db1 = torch.zeros_like(b1)",
    "dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, demb.shape[-1]))": "dC = torch.zeros_like(C)",
    "p.data += -lr * grad": "p.data += -lr * grad * (p is not W2)",
}


def _zero_output_layer() -> dict:
    """The shipped solution with Exercise 4 starting from W2 all zeros, never updating it, and zeros for the five
    gradients below it."""
    notebook = json.loads(SOLUTION.read_text())
    (cell,) = [cell for cell in notebook["cells"] if "exercise4" in cell.get("metadata", {}).get("tags", [])]
    source = "".join(cell["source"]).replace(INIT, INIT + "W2 = torch.zeros_like(W2)\n")
    for old, new in ZEROS.items():
        assert source.count(old) == 1
        source = source.replace(old, new)
    cell["source"] = source
    return notebook


def test_a_gradient_zero_everywhere_at_the_cells_parameters_earns_nothing(tmp_path: Path) -> None:
    submission = tmp_path / "zero_output_layer.ipynb"
    submission.write_text(json.dumps(_zero_output_layer()))
    out = tmp_path / "out"
    run = Run(out, grade_command(out, [submission], "--assignment", str(PARTS), timeout=300))
    assert run.gradebook[submission.name]["exercise4"] == "2", run.gradebook[submission.name]["message"]
    rows = {row["variable"]: row for row in run.variables if row["variable"].startswith("exercise4:")}
    statuses = {variable.removeprefix("exercise4:"): row["status"] for variable, row in rows.items()}
    assert statuses == {"W2": "ok", "b2": "ok", **dict.fromkeys(("bngain", "bnbias", "W1", "b1", "C"), "unchecked")}
    assert rows["exercise4:W1"]["message"].startswith(
        "not judged: autograd's dW1 is zero everywhere at the parameters this step started from"
    )
