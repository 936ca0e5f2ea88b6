"""Inputs a student cannot know in advance: a fresh secret seed per run, recorded so staff can reproduce a grade;
and submissions that reach for torch's internals flagged for review."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from grading_support import ASSIGNMENT, HOSTILE, ROOT, SAMPLES, Run, grade_command, read_csv

from gradcheck_kit.grading import flags
from gradcheck_kit.grading.assignment import load_assignment
from gradcheck_kit.grading.flags import review
from gradcheck_kit.grading.outputs import recorded_seed

SUBMISSIONS = [SAMPLES / "correct.py", SAMPLES / "sign_dlogprobs.py"]


def test_each_run_draws_a_fresh_seed() -> None:
    assignment = load_assignment(ASSIGNMENT)
    seeds = {assignment.draw_seed() for _ in range(3)}
    assert len(seeds) == 3 and all(isinstance(seed, int) and seed >= 0 for seed in seeds)
    references = [assignment.graph_for(seed).inputs()["W1"] for seed in (1, 2)]
    assert not bool((references[0] == references[1]).all())


def test_the_recorded_seed_reproduces_the_grades_byte_for_byte(tmp_path: Path) -> None:
    assert grade_command(tmp_path / "a", SUBMISSIONS, "--seed", "12345") == 0
    assert grade_command(tmp_path / "b", SUBMISSIONS, "--seed", "12345") == 0
    rows = read_csv(tmp_path / "a" / "gradebook.csv")
    assert {row["seed"] for row in rows} == {"12345"} and [row["score"] for row in rows] == ["26", "25"]
    for name in ("gradebook.csv", "variables.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert grade_command(tmp_path / "c", SUBMISSIONS, "--seed", "54321") == 0
    assert (tmp_path / "a" / "variables.csv").read_bytes() != (tmp_path / "c" / "variables.csv").read_bytes()


def test_resume_grades_the_rest_with_the_recorded_seed(tmp_path: Path) -> None:
    assert grade_command(tmp_path, SUBMISSIONS[:1], "--seed", "777") == 0
    assert recorded_seed(tmp_path) == 777
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--quiet"]
    command += ["--out", str(tmp_path), "--resume", *map(str, SUBMISSIONS)]  # no --seed: the recorded one
    assert subprocess.run(command, cwd=ROOT, check=False, capture_output=True).returncode == 0
    assert [row["seed"] for row in read_csv(tmp_path / "gradebook.csv")] == ["777", "777"]


def test_flagged_submissions_say_why(class_run: Run) -> None:
    assert "autograd engine" in class_run.gradebook["engine_backdoor.py"]["flagged"]
    assert "garbage collector" in class_run.gradebook["walk_memory.py"]["flagged"]
    assert "autograd's graph (grad_fn)" in class_run.gradebook["autograd_by_nodes.py"]["flagged"]
    assert class_run.gradebook["correct.py"]["flagged"] == ""
    assert all(row["flagged"] == "" for name, row in class_run.gradebook.items() if name in _samples())


def _samples() -> set[str]:
    return {path.name for path in SAMPLES.iterdir()}


def test_review_names_each_back_door_and_leaves_ordinary_code_alone() -> None:
    assert review("import ctypes") == "line 1: imports ctypes"
    assert review("x = getattr(torch, name)") == "line 1: calls getattr"
    assert review("dW = getattr(dW, 'T')") == ""
    assert review("__import__('torch')._C") == "line 1: calls __import__; line 1: uses torch._C (torch's C internals)"
    assert review("dlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1") == ""
    assert review("def (") == ""


def test_review_flags_torchscript_operators_by_name_and_page_cache_probes() -> None:
    """The hostile round's jit/aten autograd back door (26/26 before the zygote closed it) and its page-cache
    channel went unflagged: staff had nothing to read."""
    assert "TorchScript" in review((HOSTILE / "aten_autograd.py").read_text())
    probes = review((HOSTILE / "page_cache.py").read_text())
    assert "posix_fadvise" in probes and "preadv" in probes
    assert (
        review("import torch\nadd = torch.ops.aten.add")
        == "line 2: uses torch.ops (operators called by name, grad mode among them)"
    )
    assert review("dW = (x.T @ dh).T\nops = 3") == ""


def test_review_reads_identifiers_as_python_does() -> None:
    """Fullwidth letters are the same identifier to Python (NFKC), so they cannot slip past the review."""
    assert review("e = torch.autograd.Variable._execution_engine.ｒｕｎ_backward") == (
        "line 1: uses the autograd engine; line 1: uses the autograd engine (run_backward)"
    )
    assert review("import torch . _C as C") == "line 1: imports torch._C (torch's C internals)"


def test_review_without_its_shortcut_says_the_same_of_every_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortcut that clears a source holding no flagged word without parsing it changes no verdict."""
    sources = [path.read_text() for path in (*SAMPLES.glob("*.py"), *HOSTILE.glob("*.py"))]
    quick = [review(source) for source in sources]
    monkeypatch.setattr(flags, "_may_reach", lambda source: True)
    assert [review(source) for source in sources] == quick
    assert sum(map(bool, quick)) >= 3  # the hostile back doors are among them
