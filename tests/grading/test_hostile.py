"""Hostile submissions, graded in the same run as honest ones: each earns only what it computed, with a clear status."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from grading_support import Run, grade_command, marked_processes

from gradcheck_kit.grading.confine import NOBODY

# submission -> (score it honestly earned, status, a phrase its message must contain)
HOSTILE = {
    "fake_results.py": (3, "graded", ""),
    "sys_exit.py": (3, "error", "sys.exit(0)"),
    "os_exit.py": (3, "crashed", "before it finished"),
    "patch_torch.py": (3, "graded", ""),
    "always_equal.py": (3, "graded", ""),
    "walk_memory.py": (3, "graded", ""),
    "copies_classmate.py": (3, "graded", ""),
    "mutate_forward.py": (3, "graded", ""),
    "infinite_loop.py": (3, "timeout", "time limit"),
    "allocate.py": (3, "memory", "out of memory"),
    "flood.py": (3, "timeout", "time limit"),
    "fork_child.py": (3, "error", "BlockingIOError"),
    "uses_autograd.py": (3, "error", "autograd is not allowed in this exercise"),
    "reads_grad.py": (3, "graded", ""),
    "signals_grader.py": (3, "graded", ""),
    "forges_channel.py": (3, "error", "broke the channel"),
    "lone_surrogate.py": (3, "error", "bad \\udcff text"),
    "formula_error.py": (3, "error", "<script>"),
    "huge_commits.py": (3, "graded", ""),
    "signals_everyone.py": (3, "graded", ""),
    "leaves_files.py": (3, "graded", ""),
    "reads_classmates.py": (3, "graded", ""),
    "engine_backdoor.py": (3, "error", "autograd is not allowed"),
    "copies_substitute.py": (2, "graded", ""),
    "keyring.py": (0, "graded", ""),
    "keyring32.py": (0, "graded", ""),
    "page_cache.py": (0, "error", "PermissionError"),
    "deep_json.py": (3, "error", "broke the channel: malformed header"),
    "empty_huge_shape.py": (3, "error", "too large for a tensor"),
    "lowers_cpu_limit.py": (3, "timeout", "time limit"),
    "closes_replies.py": (3, "error", "broke the channel: it closed the stream the grader answers on"),
    "forges_dtype.py": (1, "error", "broke the channel"),
    "floods_altered.py": (1, "timeout", "time limit"),
    "autograd_by_nodes.py": (3, "error", "KeyError"),
    "aten_autograd.py": (3, "graded", "does not require grad"),
}


@pytest.mark.parametrize("submission", sorted(HOSTILE))
def test_hostile_submission_earns_only_what_it_computed(class_run: Run, submission: str) -> None:
    score, status, phrase = HOSTILE[submission]
    row = class_run.gradebook[submission]
    assert (float(row["score"]), row["status"]) == (score, status), row["message"]
    assert phrase in row["message"]


def test_honest_submissions_in_the_same_run_are_unaffected(class_run: Run) -> None:
    assert float(class_run.gradebook["correct.py"]["score"]) == 26
    assert float(class_run.gradebook["notebook.ipynb"]["score"]) == 26


def test_fake_results_do_not_reach_the_output(class_run: Run) -> None:
    assert class_run.results("fake_results.py")["score"] == 3
    written = {path.name for path in class_run.out.rglob("*") if path.is_file()}
    assert written == {"gradebook.csv", "variables.csv", "results.json"}
    assert '"score": 26' in class_run.results("fake_results.py")["output"]  # its print is shown as its output only


def test_output_is_captured_and_bounded(class_run: Run) -> None:
    output = class_run.results("flood.py")["output"]
    assert "xxxx" in output and len(output) < 10_000


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to an unprivileged user needs root")
def test_children_run_unprivileged_and_none_survive(class_run: Run) -> None:
    assert marked_processes(NOBODY, class_run.marker) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another user needs root")
def test_a_survivor_of_the_run_would_be_seen_and_no_other_process() -> None:
    """The check above can fail: a process of the unprivileged user started with the run's marker, that
    emptied its environment as a child does, is found; one without it (another test's child) is not."""
    marker = uuid.uuid4().hex
    script = "unset GRADECHECK_CLASS_RUN; echo ready; read line"  # waits on its stdin, starts nothing
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    started = [
        subprocess.Popen(["/bin/sh", "-c", script], user=NOBODY, env=env, **pipes)
        for env in ({"GRADECHECK_CLASS_RUN": marker}, {"GRADECHECK_CLASS_RUN": uuid.uuid4().hex})
    ]
    try:
        assert [process.stdout.readline() for process in started] == ["ready\n"] * 2
        assert marked_processes(NOBODY, marker) == [started[0].pid]
    finally:
        for process in started:
            process.kill()
            process.wait()


def test_the_wrong_gradients_say_why(class_run: Run) -> None:
    rows = {r["variable"]: r for r in class_run.variables if r["submission"] == "always_equal.py"}
    assert rows["counts_sum"]["status"] == "not_tensor" and "Impostor" in rows["counts_sum"]["message"]
    assert rows["counts"]["status"] == "mismatch"


def test_nothing_a_child_wrote_outlives_it(class_run: Run) -> None:
    folders = ("/tmp", "/dev/shm", tempfile.gettempdir())
    patterns = ("leftover-*", "gradcheck-*/leftover-*", "gradcheck-*/deep")  # other runs' workdirs may be live
    assert [path for folder in folders for pattern in patterns for path in Path(folder).glob(pattern)] == []


def test_a_flood_of_forged_frames_does_not_grow_the_grader(tmp_path: Path) -> None:
    """floods_altered.py sends 1 MiB frames under new names for 4 s: the grader once kept them all (2.3 GB)."""
    flood = Path(__file__).parent / "hostile" / "floods_altered.py"
    assert grade_command(tmp_path / "out", [flood], "--timeout", "4", timeout=120) == 0
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest process ever waited for
    assert largest < 1.2e9, f"a process of the run grew to {largest / 1e9:.2f} GB"
