"""A child may start no thread, yet an honest notebook that asks for threads is graded as it is: torch keeps to one
(torch.set_num_threads(8) made libgomp end the process, 'crashed'), and numpy's BLAS too (a large numpy product hung
until the time limit, its OpenBLAS starting the threads it was set up with in the grader)."""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_support import SAMPLES, grade_command, read_csv

ASKS_FOR_THREADS = {
    "threads.py": "torch.set_num_threads(8)\nscratch = torch.randn(1000, 1000) @ torch.randn(1000, 1000)\n",
    "numpy_product.py": "import numpy as np\nscratch = np.random.rand(1500, 1500) @ np.random.rand(1500, 1500)\n",
}


@pytest.mark.parametrize("name", sorted(ASKS_FOR_THREADS))
def test_a_submission_asking_for_threads_is_graded_on_one(tmp_path: Path, name: str) -> None:
    submission = tmp_path / name
    submission.write_text(ASKS_FOR_THREADS[name] + (SAMPLES / "correct.py").read_text())
    assert grade_command(tmp_path / "out", [submission], "--timeout", "5", timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
