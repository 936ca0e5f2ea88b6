"""A submission's file name cannot take the name of a file the run writes in ``--out``: its results folder would
collide with the gradebook, and the class run stopped."""

from __future__ import annotations

import shutil
from pathlib import Path

from grading_support import HOSTILE, SAMPLES, Run, grade_command

NAMES = ("gradebook.csv.py", "variables.csv.py", "shard.json.py")


def test_a_submission_named_like_an_output_file_is_graded_with_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(HOSTILE / "os_exit.py", folder / name)
    shutil.copy(SAMPLES / "correct.py", folder / "correct.py")
    out = tmp_path / "out"
    status = grade_command(out, sorted(folder.iterdir()), "--jobs", "2", timeout=300)
    run = Run(out, status)
    assert status == 0
    assert {name: run.gradebook[name]["status"] for name in NAMES} == dict.fromkeys(NAMES, "crashed")
    assert float(run.gradebook["correct.py"]["score"]) == 26
    for name in NAMES:
        assert run.results(f"_{name}")["score"] == 3
    assert run.results("correct.py")["score"] == 26
    assert (out / "gradebook.csv").is_file() and (out / "variables.csv").is_file()


def test_a_submission_named_with_control_characters_is_recorded_under_resume(tmp_path: Path) -> None:
    """The gradebook writes a name's control characters as escapes; whether a submission is already graded is
    asked by the name as written (the queue asked so, the progress bar's count by the raw name and was off)."""
    from gradcheck_kit.grading.grader import Graded
    from gradcheck_kit.grading.outputs import Outputs

    name = "\x1b[31mred.py"
    outputs = Outputs(tmp_path, resume=False)
    outputs.write(Graded(name, "graded", "", 1.0, 1.0))
    outputs.close()
    again = Outputs(tmp_path, resume=True)
    assert again.recorded(name) and not again.recorded("plain.py")
    again.close()
