"""Inputs that used to crash, hang or escape the grader: odd file names, pipes, huge notebooks and commits,
formula cells, folder names outside --out, a grader bug on one submission."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from grading_support import SAMPLES, Run, grade, grade_command, read_csv

from gradcheck_kit.grading import batch
from gradcheck_kit.grading.launch import spawn_zygote
from gradcheck_kit.grading.outputs import cell, folder_name, merge, uncell
from gradcheck_kit.grading.sandbox import Limits, Sandbox, Settings

FORMULA_STARTS = tuple("=+-@\t\r")


def test_an_invalid_utf8_file_name_is_graded_and_resume_skips_it(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    odd = os.path.join(folder, b"caf\xe9.py")
    with open(odd, "wb") as file:
        file.write((SAMPLES / "correct.py").read_bytes())
    submission = Path(os.fsdecode(odd))
    assert grade_command(tmp_path / "out", [submission]) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["submission"], row["score"], row["status"]) == ("caf\\udce9.py", "26", "graded")
    assert grade_command(tmp_path / "out", [submission, SAMPLES / "correct.py"], "--resume") == 0
    assert [r["submission"] for r in read_csv(tmp_path / "out" / "gradebook.csv")] == ["caf\\udce9.py", "correct.py"]


def test_a_named_pipe_is_an_invalid_row_not_a_hang(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.py"
    os.mkfifo(pipe)
    assert grade_command(tmp_path / "out", [pipe, SAMPLES / "correct.py"], timeout=120) == 0
    rows = {r["submission"]: r for r in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert (rows["pipe.py"]["status"], rows["pipe.py"]["message"]) == ("invalid", "pipe.py is not a regular file")
    assert rows["correct.py"]["score"] == "26"


def test_a_notebook_of_200000_cells_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    cell_json = {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": None}
    notebook = {"cells": [cell_json] * 200_000, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "huge.ipynb"
    path.write_text(json.dumps(notebook))
    assert grade_command(tmp_path / "out", [path], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert row["status"] == "invalid" and "over the" in row["message"]


def test_a_submission_named_dots_stays_inside_out(tmp_path: Path) -> None:
    dots = tmp_path / "in" / "...py"
    dots.parent.mkdir()
    shutil.copy(SAMPLES / "correct.py", dots)
    assert grade(tmp_path / "out", [dots]) == 0
    assert (tmp_path / "out" / "_.." / "results.json").is_file()
    assert not (tmp_path / "results.json").exists()
    assert {folder_name(name) for name in ("", ".py", "..py", "...py", "a.py")} == {"_", "_.py", "_.", "_..", "a"}


def test_merge_copies_nothing_from_outside_the_shards(tmp_path: Path) -> None:
    shard = tmp_path / "shard"
    shard.mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "results.json").write_text("secret")
    (shard / "linked").symlink_to(tmp_path / "secret")
    columns = "submission,score,max_score,status,message\n"
    (shard / "gradebook.csv").write_text(columns + "...py,1,26,graded,\nlinked.py,1,26,graded,\n")
    (shard / "variables.csv").write_text("submission,variable\n")
    (shard / "shard.json").write_text('{"index": 1, "count": 1}\n')
    (shard / "shard.json").write_text('{"index": 1, "count": 1}')
    assert merge(tmp_path / "dest" / "out", [shard]) == 2
    assert sorted(p.name for p in (tmp_path / "dest" / "out").iterdir()) == ["gradebook.csv", "variables.csv"]
    assert not (tmp_path / "dest" / "results.json").exists()


def test_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "'quoted"):
        assert cell(text) == "'" + text and uncell(cell(text)) == text
    assert cell("\rx") == "\\x0dx"  # a carriage return is written as its escape, which starts no formula
    assert cell("dlogprobs") == "dlogprobs" and cell("bad \udcff") == "bad \\udcff"


def test_no_cell_of_the_class_run_starts_a_formula(class_run: Run) -> None:
    rows = list(class_run.gradebook.values()) + class_run.variables
    assert not [value for row in rows for value in row.values() if value and value.startswith(FORMULA_STARTS)]
    row = class_run.gradebook["formula_error.py"]
    assert row["message"].startswith("'=HYPERLINK")


def test_feedback_is_shown_as_plain_text(class_run: Run) -> None:
    results = class_run.results("formula_error.py")
    assert (results["output_format"], results["test_output_format"], results["test_name_format"]) == ("text",) * 3
    assert "<script>" in results["output"]  # shown as text, never rendered


def test_a_lone_surrogate_from_a_child_is_written_escaped(class_run: Run) -> None:
    row = class_run.gradebook["lone_surrogate.py"]
    assert (row["status"], row["score"]) == ("error", "3") and "bad \\udcff text" in row["message"]
    assert "\\udcff" in class_run.results("lone_surrogate.py")["output"]


def test_a_grader_failure_on_one_submission_is_its_row_and_the_rest_are_graded(tmp_path, monkeypatch) -> None:
    real = batch.Grader.grade

    def fails_on_sign(self, path, sandbox):
        if path.name == "sign_dlogprobs.py":
            raise RuntimeError("boom")
        return real(self, path, sandbox)

    monkeypatch.setattr(batch.Grader, "grade", fails_on_sign)
    assert grade(tmp_path, [SAMPLES / "sign_dlogprobs.py", SAMPLES / "correct.py"]) == 0
    rows = {r["submission"]: r for r in read_csv(tmp_path / "gradebook.csv")}
    assert (
        rows["sign_dlogprobs.py"]["status"] == "grader-error"
        and "RuntimeError: boom" in rows["sign_dlogprobs.py"]["message"]
    )
    assert rows["correct.py"]["score"] == "26"


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


FLOOD = """
import json, os, struct
header = json.dumps({"op": "commit", "variable": "x", "reply": False, "kind": "tensor", "dtype": "float32",
                     "shape": [8 << 20], "nbytes": 32 << 20}).encode()
chunk = bytes(1 << 20)
for _ in range(18):
    os.write(3, struct.pack(">I", len(header)) + header)
    for _ in range(32):
        os.write(3, chunk)
"""


def test_commits_far_larger_than_the_reference_are_never_read_into_memory() -> None:
    kept = []
    settings = Settings(tracked={"dx": "x"}, payload_caps={"x": 1 << 20}, limits=Limits(timeout=30))
    with Sandbox({"x": torch.ones(3)}, settings, spawn_zygote()) as sandbox:
        sandbox.start()
        Path("/proc/self/clear_refs").write_text("5")  # count the peak memory from here
        before = _peak_rss_mb()
        result = sandbox.run(FLOOD, "flood.py", lambda variable, value, reply: kept.append(value))
        grown = _peak_rss_mb() - before
    assert result.outcome == "done" and len(kept) == 18
    assert kept[0].is_meta and tuple(kept[0].shape) == (8 << 20,)
    assert grown < 64, f"the grader grew by {grown:.0f} MB reading 18 commits of 32 MiB"


def test_notebook_tags_given_as_a_string_do_not_match_by_substring(tmp_path: Path) -> None:
    code = {
        "cell_type": "code",
        "id": "c1",
        "metadata": {"tags": "not-exercise1"},
        "outputs": [],
        "execution_count": None,
    }
    work = (SAMPLES / "correct.py").read_text().replace("# Exercise 1,", "# The exercise,")  # unmarked: tags only
    code["source"] = "# tagged only\n" + work
    notebook = {"cells": [code], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "tags.ipynb").write_text(json.dumps(notebook))
    assert grade(tmp_path / "out", [tmp_path / "tags.ipynb"]) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert "(the cells that assign the gradients)" in row["message"]  # chosen for its work, not by the tag


def test_a_source_nesting_past_the_parser_s_depth_is_a_syntax_error_not_the_sandbox_s() -> None:
    """``1+1+...+1`` (100,000 terms) and ``- - ... -1`` made the child's ast.parse raise RecursionError and
    MemoryError, reported as 'the sandbox failed before the submission ran'."""
    settings = Settings(tracked={"dx": "x"}, limits=Limits(timeout=10))
    sources = ["dx = x * 2\ny = 1" + "+1" * 100000 + "\n", "dx = x * 2\ny = " + "-" * 100000 + "1\n"]
    with Sandbox({"x": torch.ones(3)}, settings, spawn_zygote()) as sandbox:
        results = [sandbox.run(source, "deep.py", lambda variable, value, reply: None) for source in sources]
    for result in results:
        assert (result.outcome, result.error["kind"]) == ("done", "syntax"), result.error
        assert "nests too deeply to be parsed" in result.error["message"]
