"""Late changes of a gradient that rebind its name rather than change its tensor in place: an unpacking, a line run
twice, a temporary, a helper that assigns a global. Each is graded as the library judges the same code (its final
values): a late 1/n that makes every gradient right earns 26/26, a late change that leaves one wrong fails it, and one
real mistake still costs only what the same late 1/n applied in place costs (from a tester's fourth attack)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from grading_support import SAMPLES, Run, grade

SCALED = Path(__file__).resolve().parent / "samples" / "scales_at_the_end.py"
BODY, LOOPS = SCALED.read_text().split("# the mean's 1/n, applied once")
NAMES = [*re.findall(r"\bd\w+", LOOPS.split("cmp(")[0]), "demb"]
"""Every gradient the body computes without the mean's 1/n, which each of them lacks."""
CORRECT = (SAMPLES / "correct.py").read_text()
DH = "dh = dlogits @ W2.T\n"
BRANCH = "dcounts += torch.ones_like(counts) * dcounts_sum\n"
HELPER = "def finish():\n    global {names}\n{body}finish()\n"


def _rebound(skip: set[str]) -> str:
    """The late 1/n by rebinding, one name a line, for every gradient but ``skip``."""
    return "".join(f"{name} = {name} / n\n" for name in NAMES if name not in skip)


def _in_pairs(names: list[str]) -> str:
    """The late 1/n by unpacking two names at a time: ``dW2, db2 = dW2 / n, db2 / n``."""
    pairs = [names[index : index + 2] for index in range(0, len(names), 2)]
    return "".join(f"{', '.join(pair)} = {', '.join(f'{name} / n' for name in pair)}\n" for pair in pairs)


def _helper(names: list[str], change: str = "/ n") -> str:
    """The late change in a helper that assigns each gradient through ``global``, called at the end."""
    return HELPER.format(names=", ".join(names), body="".join(f"    {name} = {name} {change}\n" for name in names))


def _temporaries(names: list[str]) -> str:
    """The late 1/n through a temporary: ``t = dX.clone(); t /= n; dX = t``."""
    return "".join(f"t = {name}.clone()\nt /= n\n{name} = t\n" for name in names)


SUBMISSIONS = {
    # 1: unpacking
    "unpacks_dW2_db2.py": BODY + _rebound({"dW2", "db2"}) + "dW2, db2 = dW2 / n, db2 / n\n",
    "unpacks_every_pair.py": BODY + _in_pairs(NAMES),
    "unpacks_doubled_dh_dhpreact.py": CORRECT + "\ndh, dhpreact = dh * 2, dhpreact * 2\n",
    "unpacks_a_doubled_list.py": CORRECT + "\ndoubled = [g * 2 for g in (dW2, db2)]\ndW2, db2 = doubled\n",
    # 2: a line run twice
    "adds_dh_twice.py": CORRECT + "\ndh = dh + dlogits @ W2.T\n",
    "adds_dh_in_a_loop_after_use.py": CORRECT + "\nfor _ in range(2):\n    dh = dh + dlogits @ W2.T\n",
    "adds_dh_in_a_loop_before_use.py": CORRECT.replace(
        DH, "dh = torch.zeros_like(h)\nfor _ in range(2):\n    dh = dh + dlogits @ W2.T\n"
    ),
    "adds_dh_halves_in_a_loop.py": CORRECT.replace(
        DH, "dh = torch.zeros_like(h)\nfor _ in range(2):\n    dh = dh + 0.5 * (dlogits @ W2.T)\n"
    ),
    "recomputes_dh_after_use.py": CORRECT + "\n" + DH,
    "scales_dW2_in_a_loop.py": BODY + _rebound({"dW2"}) + "for _ in range(2):\n    dW2 = dW2 / n**0.5\n",
    "scales_dW2_twice.py": BODY + _rebound(set()) + "dW2 = dW2 / n\n",
    # 3: temporaries
    "builds_dW2_in_a_scaled_temporary.py": BODY.replace("dW2 = h.T @ dlogits\n", "t = h.T @ dlogits\nt /= n\ndW2 = t\n")
    + _rebound({"dW2"}),
    "scales_each_through_a_temporary.py": BODY + _temporaries(NAMES),
    "doubles_dW2_through_a_temporary.py": CORRECT + "\nt = dW2.clone()\nt *= 2\ndW2 = t\n",
    # 4: a helper that assigns globals
    "helper_scales_dW2.py": BODY + _rebound({"dW2"}) + _helper(["dW2"]),
    "helper_scales_all.py": BODY + _helper(NAMES),
    "helper_doubles_dW2.py": CORRECT + "\n" + _helper(["dW2"], "* 2"),
    "helper_adds_dh_once.py": CORRECT.replace(
        DH, "def add():\n    global dh\n    dh = dh + dlogits @ W2.T\ndh = torch.zeros_like(h)\nadd()\n"
    ),
    "helper_adds_dh_twice.py": CORRECT.replace(
        DH, "def add():\n    global dh\n    dh = dh + dlogits @ W2.T\ndh = torch.zeros_like(h)\nadd()\n"
    )
    + "\nadd()\n",
}
"""Submission -> its source; each is right but for the late change it names."""
ENDS_WRONG = {
    "unpacks_doubled_dh_dhpreact.py": ["h", "hpreact"],
    "unpacks_a_doubled_list.py": ["W2", "b2"],
    "adds_dh_twice.py": ["h"],
    "adds_dh_in_a_loop_after_use.py": ["h"],
    "adds_dh_in_a_loop_before_use.py": ["h"],
    "scales_dW2_twice.py": ["W2"],
    "doubles_dW2_through_a_temporary.py": ["W2"],
    "helper_doubles_dW2.py": ["W2"],
    "helper_adds_dh_twice.py": ["h"],
}
"""Submission -> the gradients that end wrong (the library says so too); every other one ends right."""
LATE_SHAPES = {
    "one_name_a_line": _rebound(set()),
    "unpacking_pairs": _in_pairs(NAMES),
    "helper": _helper(NAMES),
    "temporaries": _temporaries(NAMES),
}
"""The same late 1/n of every gradient, written four ways; the first is graded as it ended since c5dd918."""


@pytest.fixture(scope="module")
def rebound(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("rebound")
    assert DH in CORRECT and BRANCH in BODY
    assert len(NAMES) == 26 and "dW2 = h.T @ dlogits\n" in BODY
    paths = []
    for name, text in SUBMISSIONS.items():
        paths.append(folder / name)
        paths[-1].write_text(text)
    for shape, late in LATE_SHAPES.items():  # one real mistake besides the late 1/n: dcounts misses a branch
        paths.append(folder / f"missing_branch_{shape}.py")
        paths[-1].write_text(BODY.replace(BRANCH, "") + late)
    out = folder / "out"
    return Run(out, grade(out, paths, "--jobs", "2"))


@pytest.mark.parametrize("submission", sorted(SUBMISSIONS))
def test_a_late_rebinding_is_graded_as_the_gradient_ends(rebound: Run, submission: str) -> None:
    """Unpacking, a line run twice, a temporary, a helper: before, an unpacked late 1/n cost W2 and b2 (24/26), the
    unpacked pairs 7 points (19/26), the helper's late 1/n dlogprobs (25/26), a helper adding onto a zero dh dh (it
    was handed in before the helper built it) and a temporary built then scaled W2, while a second
    ``dh = dh + dlogits @ W2.T`` after use, the doubled pairs and the helper's doubling all passed (26/26)."""
    row = rebound.gradebook[submission]
    wrong = ENDS_WRONG.get(submission, [])
    assert (row["status"], float(row["score"])) == ("graded", 26 - len(wrong)), rebound.failing(submission)
    assert rebound.failing(submission) == wrong


@pytest.mark.parametrize("shape", sorted(set(LATE_SHAPES) - {"one_name_a_line"}))
def test_one_real_mistake_costs_what_it_costs_beside_a_late_scale_one_name_a_line(rebound: Run, shape: str) -> None:
    """dcounts missing a branch beside the late 1/n: unpacked, in a helper or through temporaries, it costs what it
    costs beside ``dX = dX / n`` one name a line (the gradients before dcounts pass as they ended)."""
    baseline = rebound.failing("missing_branch_one_name_a_line.py")
    assert "counts" in baseline and "logprobs" not in baseline
    assert rebound.failing(f"missing_branch_{shape}.py") == baseline


def _row(run: Run, submission: str, variable: str) -> dict[str, str]:
    return next(r for r in run.variables if r["submission"] == submission and r["variable"] == variable)


def test_the_feedback_says_a_gradient_was_rebound_not_changed_in_place(rebound: Run) -> None:
    """``dh = dh + ...`` makes a new tensor: the hint names the line that rebound it, without the advice about
    aliases that fits ``dY = dh; dY += ...`` (it said "changed in place" and advised .clone())."""
    line = len(SUBMISSIONS["adds_dh_twice.py"].splitlines())
    hint = _row(rebound, "adds_dh_twice.py", "h")["hint"]
    assert f"dh was right when later lines first used it, then rebound at line {line}" in hint
    assert ".clone()" not in hint
    lines = SUBMISSIONS["unpacks_every_pair.py"].splitlines()
    targets = [text.split(" = ")[0].split(", ") for text in lines]
    line = next(number for number, names in enumerate(targets, 1) if len(names) > 1 and "dW2" in names)
    message = _row(rebound, "unpacks_every_pair.py", "W2")["message"]
    assert f"judged as it ended: dW2 was rebound at line {line}" in message
