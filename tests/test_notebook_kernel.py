"""The exercise notebooks and the magics executed in a real Jupyter kernel (nbclient + ipykernel).

The kernel is this interpreter, declared in a kernelspec under a temporary JUPYTER_PATH,
so the tests need no ``ipykernel install`` on a fresh machine.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

nbclient = pytest.importorskip("nbclient", reason="the dev extra installs nbclient")
pytest.importorskip("ipykernel", reason="the dev extra installs ipykernel")

ROOT = Path(__file__).resolve().parents[1]
MAKEMORE = ROOT / "examples" / "makemore"
STUDENT = MAKEMORE / "backprop_ninja.ipynb"
SOLUTION = MAKEMORE / "backprop_ninja_solution.ipynb"
KERNEL = "gradcheck-kit-tests"
sys.path.insert(0, str(MAKEMORE))

from data import generated_words  # noqa: E402


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec running this interpreter, found through JUPYTER_PATH; the notebooks read a
    small generated names file (MAKEMORE_NAMES), so each runs in seconds with or without names.txt."""
    root = tmp_path_factory.mktemp("jupyter")
    names = root / "names.txt"
    names.write_text("\n".join(generated_words(1000)) + "\n")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        patch.setenv("MAKEMORE_NAMES", str(names))
        yield KERNEL


def execute(notebook: nbformat.NotebookNode, kernel: str) -> nbformat.NotebookNode:
    """Run every cell top to bottom in examples/makemore, as a student would."""
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name=kernel, resources={"metadata": {"path": str(MAKEMORE)}}
    )
    return client.execute()


VARIABLES = [
    "logprobs",
    "probs",
    "counts",
    "counts_sum",
    "counts_sum_inv",
    "norm_logits",
    "logit_maxes",
    "logits",
    "h",
    "hpreact",
    "bnraw",
    "bnvar_inv",
    "bnvar",
    "bndiff2",
    "bndiff",
    "hprebn",
    "bnmeani",
    "embcat",
    "emb",
    "C",
    "W1",
    "b1",
    "W2",
    "b2",
    "bngain",
    "bnbias",
]
"""The lecture's retain_grad list, in its order."""


def cell(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    (found,) = [c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", [])]
    return found


def text(code_cell: nbformat.NotebookNode) -> str:
    """Everything a cell showed as text: streams, then the plain form of rich outputs."""
    parts = []
    for output in code_cell.outputs:
        assert output.output_type != "error", f"the cell raised: {output.get('ename')}: {output.get('evalue')}"
        parts.append(output.get("text") or output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def html(code_cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in code_cell.outputs)


def with_exercise1(old: str, new: str) -> nbformat.NotebookNode:
    """The student notebook with Exercise 1 filled in from the solution, ``old`` planted as ``new``."""
    student, solution = nbformat.read(STUDENT, 4), nbformat.read(SOLUTION, 4)
    source = cell(solution, "exercise1").source
    assert old in source
    cell(student, "exercise1").source = source.replace(old, new)
    return student


def table_rows(output: str) -> dict[str, list[str]]:
    """The report table's rows by variable name: [shape, status, exact, approximate, ...]."""
    rows = {}
    for line in output.splitlines():
        fields = re.split(r"\s{2,}", line.strip())
        if len(fields) >= 5 and fields[2] in ("ok", "mismatch", "shape", "missing", "nonfinite"):
            rows[fields[0]] = fields[1:]
    return rows


def grade(tmp_path: Path, *submissions: Path) -> dict[str, int]:
    out = tmp_path / "results"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(MAKEMORE / "assignment.py")]
    subprocess.run([*command, "--out", str(out), *map(str, submissions)], check=True, capture_output=True)
    with open(out / "gradebook.csv") as f:
        return {Path(row["submission"]).name: int(float(row["score"])) for row in csv.DictReader(f)}


def test_notebooks_are_committed_without_outputs_and_without_a_retain_grad_loop():
    for path in (STUDENT, SOLUTION):
        notebook = nbformat.read(path, 4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert not any("retain_grad" in c.source or ".backward()" in c.source for c in code), path.name
        tags = [t for c in code for t in c.get("metadata", {}).get("tags", [])]
        assert tags == ["exercise1", "exercise2", "exercise3", "exercise4"], path.name


def test_solution_shows_26_right_gradients_and_the_shape_problem_cmp_misses(kernel):
    notebook = execute(nbformat.read(SOLUTION, 4), kernel)
    exercise1 = text(cell(notebook, "exercise1"))
    rows = table_rows(exercise1)
    assert "cmp [cpu-float32]: 26/26 ok" in exercise1
    assert len(rows) == 26 and all(row[3] == "True" for row in rows.values())
    assert "<table class='gck'>" in html(cell(notebook, "exercise1"))
    demo = text(next(c for c in notebook.cells if "lecture_cmp(" in c.source))
    lecture_line, checked_line = demo.splitlines()[:2]
    assert lecture_line.startswith("bnbias          | exact: True  | approximate: True")
    assert "SHAPE: expected shape (1, 64), got (64,)" in checked_line and "keepdim=True" in checked_line
    assert "%%backward [cpu-float32]: 1/1 ok" in text(cell(notebook, "exercise2"))
    assert "%%backward [cpu-float32]: 4/4 ok" in text(cell(notebook, "exercise3"))
    after_training = [text(c) for c in notebook.cells if c.source.startswith("%%backward\ndC, dW1")]
    assert after_training and "%%backward [cpu-float32]: 7/7 ok" in after_training[0]


def test_a_planted_mistake_shows_its_root_cause_and_hint(kernel):
    notebook = with_exercise1("dlogprobs[range(n), Yb] = -1.0 / n", "dlogprobs[range(n), Yb] = 1.0 / n")
    exercise1 = cell(execute(notebook, kernel), "exercise1")
    output = text(exercise1)
    # b1's true gradient is 0 (batchnorm removes the mean): its flipped round-off may still pass
    assert re.search(r"^cmp \[cpu-float32\]: [01]/26 ok, root cause: logprobs$", output, re.M)
    assert re.search(r"^logprobs .*\| hint: sign flipped: manual ≈ -autograd$", output, re.M)
    assert re.search(r"^probs .*\| follows from logprobs$", output, re.M)
    # C is a parameter: %%forward ran on a copy of it, which cmp must see in the graph to link it to logprobs
    assert re.search(r"^C .*\| follows from logprobs$", output, re.M)
    assert "heatmaps of logprobs" in html(exercise1)


def test_the_grader_gives_the_score_the_notebook_predicted(kernel, tmp_path):
    planted = with_exercise1("dbngain = (bnraw * dhpreact).sum(0, keepdim=True)", "dbngain = (bnraw * dhpreact).sum(0)")
    executed = execute(planted, kernel)
    nbformat.write(executed, tmp_path / "planted.ipynb")
    output = text(cell(executed, "exercise1"))
    predicted = int(re.search(r"^cmp \[cpu-float32\]: (\d+)/26 ok, root cause: bngain$", output, re.M).group(1))
    bngain = table_rows(output)["bngain"]
    assert bngain[1] == "shape" and "ROOT CAUSE" in bngain[-1] and "keepdim=True" in bngain[-1]
    scores = grade(tmp_path, tmp_path / "planted.ipynb", STUDENT)
    assert scores == {"planted.ipynb": predicted, STUDENT.name: 0}
    assert predicted == 25


def test_the_drop_in_cmp_works_in_the_lecture_notebook_as_it_is(kernel):
    solution = nbformat.read(SOLUTION, 4)
    forward = next(c.source for c in solution.cells if c.source.startswith("%%forward\nemb")).split("\n", 1)[1]
    retain = "for t in [" + ", ".join(VARIABLES) + "]:\n    t.retain_grad()\nloss.backward()"
    missing_branch = cell(solution, "exercise1").source.replace("dcounts += torch.ones_like(counts) * dcounts_sum", "")
    cells = [
        "import torch\nimport torch.nn.functional as F\nfrom model import make_inputs\n"
        "from gradcheck_kit.notebook import cmp\nglobals().update(make_inputs())",
        forward + "\n" + retain,
        missing_branch,
    ]
    notebook = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), kernel)
    output = text(notebook.cells[2])
    line = forward.splitlines().index("counts_sum = counts.sum(1, keepdims=True)") + 1
    assert "cmp [cpu-float32]: 5/26 ok, root cause: counts\n" in output
    hint = f"hint: counts is also used in `counts_sum = counts.sum(1, keepdims=True)` (line {line}); add that branch"
    assert re.search(r"^counts .*\| " + re.escape(hint) + "$", output, re.M)
    assert re.search(r"^W2 .*\| follows from counts$", output, re.M)


def test_the_magics_explain_misuse_without_a_traceback(kernel):
    cells = [
        "%load_ext gradcheck_kit\nimport torch",
        "%%backward\ndx = 1",
        "%%forward\ny = undefined_name * 2",
        "x = torch.randn(3, requires_grad=True)",
        "%%forward total\ny = x * 2\ntotal = y.sum()",
        "%%backward y nosuch\ndy = torch.ones(3)",
        "%%backward\ndy = torch.ones(3)\ndx = 3 * dy",
        "%%backward x\ndy = torch.ones(3)",
        "%%backward\nz = 1",
        "%%backward\ndxx = torch.ones(3)",
        "%%backward\ndx = (",
        "%%forward\ny = (",
    ]
    notebook = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), kernel)
    shown = [text(c) for c in notebook.cells]
    assert shown[1] == "%%backward: nothing to check against: run the forward cell under %%forward first\n"
    assert shown[2].startswith("%%forward: nothing captured: ")
    assert "NameError: name 'undefined_name' is not defined" in shown[2] and "Traceback" not in shown[2]
    assert shown[4].startswith("%%forward: 2 variables captured, loss = ")
    assert shown[5].startswith("%%backward: ['nosuch'] are not variables of the forward")
    assert "%%backward [cpu-float32]: 1/2 ok, root cause: x" in shown[6]
    assert "hint: off by a constant factor: manual ≈ 1.5 × autograd" in shown[6]
    assert "no dx was assigned" in shown[7]
    assert "%%backward [cpu-float32]: skipped: the cell assigned no d<name> gradient" in shown[8]
    assert "names no forward variable (there is no 'xx'); did you mean dx?" in shown[9]
    assert shown[10] == (
        "%%backward: the cell does not parse, so nothing in it ran: SyntaxError: '(' was never closed (line 2)\n"
    )
    assert shown[11].startswith("%%forward: nothing captured: ") and "SyntaxError" in shown[11]


def test_a_forward_cell_run_again_checks_as_it_did_the_first_time(kernel):
    """The notebook's h after a run (a tensor made by the last run) is the cell's own name, not an input:
    taken as one, it became a parameter that the cell's ``h = x @ w`` rebinds, a failing graph row."""
    forward, backward = (
        "%%forward\nh = x @ w\ny = h.tanh()\nloss = y.sum()",
        "%%backward\ndy = torch.ones_like(y)\ndh = (1 - y**2) * dy\ndw = x.T @ dh",
    )
    setup = (
        "%load_ext gradcheck_kit\nimport torch\ng = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(4, 3, generator=g)\nw = torch.randn(3, 2, generator=g, requires_grad=True)"
    )
    plain = forward.split("\n", 1)[1]
    cells = [setup, forward, backward, forward, backward, plain, forward, backward]
    notebook = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), kernel)
    shown = [text(c) for c in notebook.cells]
    for forward_output in shown[1], shown[3], shown[6]:
        assert forward_output.startswith("%%forward: 3 variables captured") and "cannot check" not in forward_output
    for backward_output in shown[2], shown[4], shown[7]:
        assert "%%backward [cpu-float32]: 3/3 ok" in backward_output


def test_a_backward_cell_that_finishes_a_gradient_in_place_updates_and_checks_it(kernel):
    """``dh += 2 * dz`` adds the second branch to the dh of an earlier cell: the notebook keeps the whole dh, as a
    plain run would, and the cell checks it."""
    cells = [
        "%load_ext gradcheck_kit\nimport torch\ng = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(4, 3, generator=g)\nw = torch.randn(3, 2, generator=g, requires_grad=True)",
        "%%forward\nh = x @ w\ny = h.tanh()\nz = h * 2\nloss = y.sum() + z.sum()",
        "%%backward y z\ndy = torch.ones_like(y)\ndz = torch.ones_like(z)\ndh = (1 - y**2) * dy",
        "%%backward\ndh += 2 * dz\ndw = x.T @ dh",
        "print(torch.allclose(dh, (1 - y**2) + 2))",
    ]
    notebook = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), kernel)
    shown = [text(c) for c in notebook.cells]
    assert "%%backward [cpu-float32]: 2/2 ok" in shown[3] and set(table_rows(shown[3])) == {"h", "w"}
    assert shown[4] == "True\n"
