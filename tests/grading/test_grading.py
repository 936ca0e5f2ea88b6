"""Grading the shipped sample submissions: scores, statuses, per-variable rows and Gradescope JSON."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

import pytest
from grading_support import ASSIGNMENT, HOSTILE, SAMPLES, Run, grade, read_csv

from gradcheck_kit.grading.assignment import load_assignment
from gradcheck_kit.grading.batch import grade_all
from gradcheck_kit.grading.cli import add_commands
from gradcheck_kit.grading.grader import Grader
from gradcheck_kit.grading.launch import fork_zygotes
from gradcheck_kit.grading.outputs import GRADEBOOK_COLUMNS, VARIABLE_COLUMNS, Outputs, merge
from gradcheck_kit.grading.sandbox import Limits

SAMPLE_EXPECTATIONS = [
    ("correct.py", 26, "graded", []),
    ("notebook.ipynb", 26, "graded", []),
    ("sign_dlogprobs.py", 25, "graded", ["logprobs"]),
    ("missing_sum_db2.py", 25, "graded", ["b2"]),
    ("missing_branch_dcounts.py", 25, "graded", ["counts"]),
    ("bessel_dbndiff2.py", 25, "graded", ["bndiff2"]),
    ("transpose_dW2.py", 25, "graded", ["W2"]),
    ("keepdim_dbnbias.py", 25, "graded", ["bnbias"]),
    ("looks_at_gradients.py", 26, "graded", []),
    ("alias_dhprebn.py", 25, "graded", ["bndiff"]),
    ("zeros_dW2.py", 25, "graded", ["W2"]),
    ("ones_dC.py", 25, "graded", ["C"]),
    ("broadcast_dbndiff2.py", 25, "graded", ["bndiff2"]),
    ("typo_dlogit_maxes.py", 25, "graded", ["logit_maxes"]),
    ("lecture_dbnmeani.py", 25, "graded", ["bnmeani"]),
]


def test_grading_finishes_with_exit_status_zero(class_run: Run) -> None:
    assert class_run.status == 0


@pytest.mark.parametrize(("submission", "score", "status", "failing"), SAMPLE_EXPECTATIONS)
def test_one_mistake_costs_one_variable(class_run: Run, submission: str, score: int, status: str, failing: list):
    row = class_run.gradebook[submission]
    assert (float(row["score"]), float(row["max_score"]), row["status"]) == (score, 26, status)
    assert class_run.failing(submission) == failing


def test_an_error_part_way_keeps_what_came_before(class_run: Run) -> None:
    row = class_run.gradebook["raises_midway.py"]
    assert (row["status"], float(row["score"])) == ("error", 11)
    assert "NameError at line 17" in row["message"] and "dhh" in row["message"]
    assert class_run.failing("raises_midway.py")[0] == "hpreact"


def test_csv_columns_are_the_contract(class_run: Run) -> None:
    header = (class_run.out / "gradebook.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["submission", "score", "max_score", "status"] and tuple(header) == GRADEBOOK_COLUMNS
    assert tuple((class_run.out / "variables.csv").read_text().splitlines()[0].split(",")) == VARIABLE_COLUMNS
    rows = [r for r in class_run.variables if r["submission"] == "transpose_dW2.py"]
    assert len(rows) == 26 and rows[0]["variable"] == "logprobs"
    w2 = next(r for r in rows if r["variable"] == "W2")
    assert (w2["status"], w2["points"], w2["max_points"]) == ("shape", "0", "1")


def test_results_json_is_gradescope_format(class_run: Run) -> None:
    results = class_run.results("sign_dlogprobs.py")
    assert set(results) >= {"score", "output", "tests"} and results["score"] == 25
    assert "execution_time" not in results  # optional for Gradescope; a wall-clock time would vary run to run
    first = results["tests"][0]
    assert set(first) == {"name", "score", "max_score", "status", "output", "number", "visibility"}
    assert (first["name"], first["score"], first["max_score"], first["status"]) == ("dlogprobs", 0, 1, "failed")
    assert "mismatch" in first["output"] and len(results["tests"]) == 26


def test_cascade_grading_lets_one_mistake_spread(tmp_path) -> None:
    grade(tmp_path, [SAMPLES / "sign_dlogprobs.py"], "--cascade")
    (row,) = read_csv(tmp_path / "gradebook.csv")
    assert float(row["score"]) < 25


def test_shards_partition_the_class_and_merge_joins_them(tmp_path) -> None:
    submissions = sorted(SAMPLES.glob("*.py"))[:4]
    for index in (1, 2):
        grade(tmp_path / f"shard{index}", submissions, "--shard", f"{index}/2")
    halves = [read_csv(tmp_path / f"shard{index}" / "gradebook.csv") for index in (1, 2)]
    assert [len(half) for half in halves] == [2, 2]
    assert merge(tmp_path / "all", [tmp_path / "shard1", tmp_path / "shard2"]) == 4
    merged = read_csv(tmp_path / "all" / "gradebook.csv")
    assert sorted(r["submission"] for r in merged) == sorted(p.name for p in submissions)
    assert len(read_csv(tmp_path / "all" / "variables.csv")) == 4 * 26
    assert all((tmp_path / "all" / p.stem / "results.json").is_file() for p in submissions)


def test_resume_skips_what_is_done_and_drops_half_written_rows(tmp_path) -> None:
    submissions = [SAMPLES / "correct.py", SAMPLES / "sign_dlogprobs.py"]
    grade(tmp_path, submissions[:1])
    with (tmp_path / "variables.csv").open("a") as file:
        file.write("sign_dlogprobs.py,logprobs,ok,1,1,True,True,0,,left by an interrupted run\n")
    before = read_csv(tmp_path / "gradebook.csv")
    grade(tmp_path, submissions, "--resume")
    after = read_csv(tmp_path / "gradebook.csv")
    assert after[0] == before[0] and [r["submission"] for r in after] == ["correct.py", "sign_dlogprobs.py"]
    rows = [r for r in read_csv(tmp_path / "variables.csv") if r["submission"] == "sign_dlogprobs.py"]
    assert len(rows) == 26 and rows[0]["status"] == "mismatch"


def test_a_missing_assignment_is_a_grader_failure(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["grade", "--assignment", str(tmp_path / "none.py"), "--out", str(tmp_path), "x.py"])
    assert args.run(args) == 2
    with pytest.raises(ChildProcessError):  # the zygote forked before the assignment failed to load is gone
        os.waitpid(-1, os.WNOHANG)


def test_when_fork_is_refused_the_command_spawns_its_zygotes(tmp_path, monkeypatch) -> None:
    def refuse() -> int:
        raise BlockingIOError("Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    assert grade(tmp_path, [SAMPLES / "correct.py"]) == 0
    (row,) = read_csv(tmp_path / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 26)


def test_the_library_api_spawns_zygotes_that_hold_no_reference(tmp_path) -> None:
    grader = Grader(load_assignment(ASSIGNMENT), limits=Limits(timeout=5))
    outputs = Outputs(tmp_path, resume=False)
    submissions = [SAMPLES / "sign_dlogprobs.py", HOSTILE / "walk_memory.py"]
    assert grade_all(grader, submissions, outputs, jobs=2, progress=None) == 2
    outputs.close()
    scores = {row["submission"]: float(row["score"]) for row in read_csv(tmp_path / "gradebook.csv")}
    assert scores == {"sign_dlogprobs.py": 25, "walk_memory.py": 3}


def test_same_class_twice_gives_byte_identical_csvs(tmp_path) -> None:
    submissions = [SAMPLES / name for name in ("transpose_dW2.py", "correct.py", "sign_dlogprobs.py")]
    first, second = tmp_path / "first", tmp_path / "second"
    assert grade(first, submissions, "--jobs", "2") == grade(second, submissions[::-1], "--jobs", "2") == 0
    for name in ("gradebook.csv", "variables.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert [row["submission"] for row in read_csv(first / "gradebook.csv")] == sorted(p.name for p in submissions)


@pytest.mark.parametrize("allow", [True, False])
def test_autograd_is_closed_in_the_children_only_when_the_assignment_says(allow: bool) -> None:
    """The zygote is told once, at start, and closes autograd for every child it forks (or for none)."""
    assignment = replace(load_assignment(ASSIGNMENT), allow_autograd=allow)
    grader = Grader(assignment, limits=Limits(timeout=5, memory_mb=256), seed=1)
    with grader.sandbox(*fork_zygotes(1)) as sandbox:
        graded = [grader.grade(HOSTILE / "uses_autograd.py", sandbox) for _ in range(2)]
    found = [(one.status, {result.row.variable: result.row.status for result in one.variables}["W2"]) for one in graded]
    if allow:  # backward ran: its dW2 is the gradient of another sum, judged wrong like any wrong gradient
        assert found == [("graded", "mismatch")] * 2
    else:
        assert found == [("error", "missing")] * 2
        assert all("autograd is not allowed" in one.message for one in graded)
