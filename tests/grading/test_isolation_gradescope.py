"""The Gradescope recipe end to end, with /autograder replaced by a temporary folder: build the zip, unpack it
where Gradescope does, run setup.sh and then run_autograder on a submission."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from grading_support import HOSTILE, ROOT, SAMPLES

RECIPE = ROOT / "docs" / "gradescope"


@pytest.fixture(scope="module")
def autograder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An /autograder after setup.sh: the built zip unpacked into source/, the existing venv reused."""
    folder = tmp_path_factory.mktemp("gradescope")
    zipped = folder / "autograder.zip"
    subprocess.run(["bash", str(RECIPE / "build.sh"), str(zipped)], check=True, capture_output=True)
    root = folder / "autograder"
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(root / "source")
    subprocess.run(["bash", str(root / "source" / "setup.sh")], env=_env(root), check=True, capture_output=True)
    return root


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADCHECK_VENV": str(Path(sys.executable).parents[1])}


def _run(root: Path, submission: Path) -> dict:
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    shutil.copy(submission, root / "submission")
    command = ["bash", str(root / "source" / "run_autograder")]
    subprocess.run(command, env=_env(root), check=True, capture_output=True, timeout=300)
    return json.loads((root / "results" / "results.json").read_text())


def test_the_zip_ships_only_what_grading_needs(autograder: Path) -> None:
    shipped = {path.relative_to(autograder / "source").parts[0] for path in (autograder / "source").iterdir()}
    assert shipped == {"setup.sh", "run_autograder", "gradcheck-kit", "assignment"}
    assert sorted(p.name for p in (autograder / "assignment").iterdir()) == ["assignment.py", "data.py", "model.py"]
    assert not list((autograder / "source").rglob("backward_ex*.py")) and not list(autograder.rglob("test_*.py"))


def test_setup_makes_the_assignment_and_source_root_only(autograder: Path) -> None:
    for folder in (autograder / "assignment", autograder / "source"):
        assert folder.stat().st_mode & 0o077 == 0, oct(folder.stat().st_mode)


def test_run_autograder_grades_a_submission(autograder: Path) -> None:
    results = _run(autograder, SAMPLES / "sign_dlogprobs.py")
    assert results["score"] == 25 and len(results["tests"]) == 26
    assert isinstance(results["extra_data"]["seed"], int)


def test_a_submission_hunting_for_the_assignment_finds_nothing(autograder: Path, tmp_path: Path) -> None:
    hunter = (HOSTILE / "reads_classmates.py").read_text().replace("/autograder/", f"{autograder}/")
    hunter = hunter.replace('"**/backward_ex1.py"', '"**/*.py"')
    (tmp_path / "hunter.py").write_text(hunter)
    planted = autograder / "source" / "gradcheck-kit" / "solution.py"  # a reference shipped by mistake
    shutil.copy(SAMPLES / "correct.py", planted)
    assert _run(autograder, tmp_path / "hunter.py")["score"] == 3
