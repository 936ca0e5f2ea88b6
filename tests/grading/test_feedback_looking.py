"""Independent grading does not punish looking at a gradient (issue 10, section 1).

Each variant is ``correct.py`` plus one line a real student wrote to look at a gradient;
all of them are graded in one run, and each must still score 26/26.
"""

from __future__ import annotations

import ast

import pytest
from grading_support import SAMPLES, Run, grade

from gradcheck_kit.grading.statements import roles

CORRECT = (SAMPLES / "correct.py").read_text()

HELPER = """def compare(name, a, b):
    print(name, (a - b.grad).abs().max())
"""

# name -> (line of correct.py to insert after, the inserted lines)
VARIANTS = {
    "print_between_branches": ("dcounts = counts_sum_inv * dprobs", "print(dcounts.shape)"),
    "assert_between_branches": ("dcounts = counts_sum_inv * dprobs", "assert dcounts.shape == counts.shape"),
    "bare_expression": ("dlogprobs = torch.zeros_like(logprobs)", "dlogprobs.shape"),
    "helper_on_first_attempt": (
        "dlogprobs[range(n), Yb] = -1.0 / n",
        HELPER + "dprobs = probs * dlogprobs\ncompare('probs', dprobs, probs)",
    ),
    "looking_statement_raises": ("dh = dlogits @ W2.T", "print(dh.shape, undefined_name)"),
    "loop_that_prints": ("db1 = dhprebn.sum(0)", "for g in (dW1, db1):\n    print(g.norm())"),
}


def _variant(before: str, inserted: str) -> str:
    assert before in CORRECT
    return CORRECT.replace(before, before + "\n" + inserted, 1)


@pytest.fixture(scope="module")
def looked(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("looking")
    paths = []
    for name, (before, inserted) in VARIANTS.items():
        path = folder / f"{name}.py"
        path.write_text(_variant(before, inserted))
        paths.append(path)
    aliased = folder / "alias_without_clone.py"
    aliased.write_text(CORRECT.replace("dhprebn = dbndiff.clone()", "dhprebn = dbndiff"))
    out = folder / "out"
    return Run(out, grade(out, [*paths, aliased], "--jobs", "2"))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_correct_plus_one_looking_line_scores_full_marks(looked: Run, name: str) -> None:
    row = looked.gradebook[f"{name}.py"]
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
    assert looked.failing(f"{name}.py") == []


def test_an_error_in_a_looking_statement_is_a_note(looked: Run) -> None:
    message = looked.gradebook["looking_statement_raises.py"]["message"]
    assert "NameError" in message and "undefined_name" in message and "ignored" in message
    assert "note: NameError" in looked.results("looking_statement_raises.py")["output"]


def test_an_alias_changed_in_place_fails_the_gradient_it_aliases(looked: Run) -> None:
    row = looked.gradebook["alias_without_clone.py"]
    assert float(row["score"]) == 25 and looked.failing("alias_without_clone.py") == ["bndiff"]
    bndiff = next(
        r for r in looked.variables if r["submission"] == "alias_without_clone.py" and r["variable"] == "bndiff"
    )
    line = _line_of(CORRECT, "dhprebn += ")
    assert f"changed in place at line {line}" in bndiff["hint"] and ".clone()" in bndiff["hint"]


def _line_of(source: str, start: str) -> int:
    return next(number for number, line in enumerate(source.splitlines(), 1) if line.startswith(start))


@pytest.mark.parametrize(
    ("code", "looking"),
    [
        ("print(dX.shape)\ndY = dX * 2", [True, False]),
        ("t = dX.sum(0)\ndY = t", [False, False]),
        ("t = dX.sum(0)\nprint(t)", [True, True]),
        ("def helper(a):\n    return a\nhelper(dX)", [True, True]),
        ("def helper(a):\n    return a\ndY = helper(dX)", [False, False]),
        ("def fill():\n    global dY\n    dY = dX * 2\nfill()", [False, False]),
        ("plt.imshow(dX)\nfig = plt.figure()", [True, True]),
    ],
)
def test_a_statement_is_looking_unless_a_gradient_is_computed_from_it(code: str, looking: list[bool]) -> None:
    found = roles(ast.parse(code).body, {"dX", "dY"})
    assert [role.looking for role in found] == looking


def test_a_computing_statement_exempts_what_it_builds() -> None:
    (role,) = roles(ast.parse("dY += dX * 2").body, {"dX", "dY"})
    assert role.counts("dX") and not role.counts("dY")
