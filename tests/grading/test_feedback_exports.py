"""Real class exports (issue 10, section 5): per-student folders, Gradescope exports, shards, a reused --out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from grading_support import ROOT, SAMPLES, Run, grade, read_csv

from gradcheck_kit.grading.collect import choose, read_metadata
from gradcheck_kit.grading.outputs import merge
from gradcheck_kit.grading.shards import from_environment
from gradcheck_kit.grading.submission import SubmissionError

CORRECT = SAMPLES / "correct.py"
SIGN = SAMPLES / "sign_dlogprobs.py"
NOTEBOOK = SAMPLES / "notebook.ipynb"
METADATA = """---
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1815'
    :email: ada@example.edu
  - :name: "Alan Turing"
    :email: alan@example.edu
  :created_at: 2026-11-30 10:00:00.000000000 -08:00
  :score: 0.0
submission_102:
  :submitters:
  - :name: Grace Hopper
    :email: grace@example.edu
  :status: processed
"""


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A class export with a folder per student, graded by naming the export folder."""
    root = tmp_path_factory.mktemp("export") / "class"
    _copy(CORRECT, root / "alice" / "hw.py")
    _copy(SIGN, root / "bob" / "hw.py")
    _copy(NOTEBOOK, root / "carol" / "work.ipynb")
    (root / "carol" / "scratch.py").write_text("print('helper')\n")
    _copy(CORRECT, root / "dave" / "backprop.py")
    (root / "dave" / "utils.py").write_text("def helper(x):\n    return x\n")
    _copy(CORRECT, root / "erin" / "one.py")
    _copy(SIGN, root / "erin" / "two.py")
    out = root.parent / "out"
    return Run(out, grade(out, [root]))


@pytest.mark.parametrize(
    ("student", "score", "status"),
    [("alice", 26, "graded"), ("bob", 25, "graded"), ("carol", 26, "graded"), ("dave", 26, "graded")],
)
def test_a_folder_per_student_is_graded_by_the_file_that_holds_the_work(export: Run, student, score, status):
    row = export.gradebook[student]
    assert (float(row["score"]), row["status"]) == (score, status), row["message"]
    assert (export.out / student / "results.json").is_file()


def test_a_folder_with_two_candidate_files_says_so(export: Run) -> None:
    row = export.gradebook["erin"]
    assert row["status"] == "invalid"
    assert (
        row["message"]
        == "erin holds several files (one.py, two.py) and several of them assign the gradients: hand in one"
    )


def test_a_folder_with_two_notebooks_says_so_without_claiming_what_they_hold(tmp_path: Path) -> None:
    _copy(NOTEBOOK, tmp_path / "frank" / "draft.ipynb")
    (tmp_path / "frank" / "empty.ipynb").write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}')
    with pytest.raises(SubmissionError) as raised:
        choose(tmp_path / "frank", {"dlogprobs"})
    assert str(raised.value) == "frank holds several notebooks (draft.ipynb, empty.ipynb): hand in one"


def test_same_named_files_in_different_folders_keep_apart(tmp_path: Path) -> None:
    first, second = _copy(CORRECT, tmp_path / "a" / "hw.py"), _copy(SIGN, tmp_path / "b" / "hw.py")
    alone = _copy(CORRECT, tmp_path / "c" / "solo.py")
    assert grade(tmp_path / "out", [first, second, alone]) == 0
    scores = {row["submission"]: float(row["score"]) for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert scores == {"a/hw.py": 26, "b/hw.py": 25, "solo.py": 26}
    assert {p.name for p in (tmp_path / "out").iterdir() if p.is_dir()} == {"a_hw", "b_hw", "solo"}


def test_a_gradescope_export_puts_names_and_emails_in_the_gradebook(tmp_path: Path) -> None:
    export = tmp_path / "assignment_export"
    _copy(CORRECT, export / "submission_101" / "backprop.py")
    _copy(NOTEBOOK, export / "submission_102" / "makemore.ipynb")
    (export / "submission_metadata.yml").write_text(METADATA)
    assert grade(tmp_path / "out", [export]) == 0
    rows = {row["submission"]: row for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert rows["submission_101"]["students"] == "Ada Lovelace; Alan Turing"
    assert rows["submission_101"]["emails"] == "ada@example.edu; alan@example.edu"
    assert (rows["submission_102"]["students"], float(rows["submission_102"]["score"])) == ("Grace Hopper", 26)


def test_the_metadata_reader_reads_gradescopes_shape() -> None:
    assert read_metadata(METADATA) == {
        "submission_101": {"students": "Ada Lovelace; Alan Turing", "emails": "ada@example.edu; alan@example.edu"},
        "submission_102": {"students": "Grace Hopper", "emails": "grace@example.edu"},
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, (2, 4)),
        ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"}, (1, 4)),
        ({"JOB_COMPLETION_INDEX": "3", "GRADECHECK_SHARD_COUNT": "4"}, (4, 4)),
        ({}, None),
    ],
)
def test_the_shard_comes_from_the_job_array(environ: dict, expected) -> None:
    found = from_environment(environ)
    assert (found[:2] if found else None) == expected


def test_a_kubernetes_index_without_a_count_is_a_usage_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "0")
    assert grade(tmp_path / "out", [CORRECT]) == 2
    assert "GRADECHECK_SHARD_COUNT" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_slurm_shards_merge_and_merge_refuses_missing_or_repeated_shards(tmp_path: Path, monkeypatch) -> None:
    submissions = sorted(SAMPLES.glob("*.py"))[:3]
    for task in (1, 2, 3):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(task))
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
        monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
        assert grade(tmp_path / f"shard{task}", submissions) == 0
        recorded = json.loads((tmp_path / f"shard{task}" / "shard.json").read_text())
        assert recorded == {"index": task, "count": 3, "submissions": [submissions[task - 1].name]}
    shards = [tmp_path / f"shard{task}" for task in (1, 2, 3)]
    assert [len(read_csv(shard / "gradebook.csv")) for shard in shards] == [1, 1, 1]
    with pytest.raises(ValueError, match="shards missing: 2/3"):
        merge(tmp_path / "merged", [shards[0], shards[2]])
    with pytest.raises(ValueError, match="shard 1/3 given twice"):
        merge(tmp_path / "merged", [shards[0], shards[0], shards[1], shards[2]])
    assert merge(tmp_path / "merged", shards) == 3


def test_a_reused_out_is_refused_without_resume_and_left_as_it_was(tmp_path: Path, capsys) -> None:
    assert grade(tmp_path, [CORRECT]) == 0
    before = (tmp_path / "gradebook.csv").read_bytes()
    assert grade(tmp_path, [SIGN]) == 2
    assert "already holds a gradebook: pass --resume" in capsys.readouterr().err
    assert (tmp_path / "gradebook.csv").read_bytes() == before


def test_grade_prints_a_summary_with_the_gradebook_path(tmp_path: Path, capsys) -> None:
    assert grade(tmp_path, [CORRECT, SIGN]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "2 submissions: 2 graded"
    assert printed[1].split()[:2] == ["100%", "1"] and printed[2].split()[:2] == ["75-99%", "1"]
    assert printed[-1] == f"gradebook: {tmp_path / 'gradebook.csv'}"


def test_run_autograders_command_grades_a_submission_of_several_files(tmp_path: Path) -> None:
    submission = tmp_path / "submission"  # what Gradescope unpacks: the notebook, a helper, a stray copy
    _copy(NOTEBOOK, submission / "makemore.ipynb")
    (submission / "helpers.py").write_text("def show(x):\n    print(x)\n")
    command = (ROOT / "docs" / "gradescope" / "run_autograder").read_text()
    graded = [line.rstrip('"') for line in command.splitlines() if "--out" in line]
    assert [line.endswith("/submission") for line in graded] == [True] and "/submission/results.json" in command
    assert grade(tmp_path / "out", [submission]) == 0
    results = json.loads((tmp_path / "out" / "submission" / "results.json").read_text())
    assert results["score"] == 26 and "graded cells: " in results["output"]
