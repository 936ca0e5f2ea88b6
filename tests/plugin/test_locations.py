"""Where a gradient check's failure or skip is said to be, seen from where pytest was started."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = """
import pytest
from gradcheck_tiny import GRAPH, RIGHT, WRONG


def test_wrong(gradcheck):
    gradcheck(GRAPH, WRONG)


def test_on_gpu(gradcheck):
    gradcheck(GRAPH, RIGHT, devices=["cuda"])
"""


def test_a_check_run_from_a_subfolder_names_files_that_are_there(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a subfolder (``cd tests/sub && pytest ..``), the check's failure and skip named paths relative to
    the rootdir ('test_checks.py:6', 'gradcheck_tiny.py:22'), which are not there from the subfolder, while
    pytest's own say '../test_plain.py:2'. Every path said now leads to its file from where pytest started."""
    project.makepyfile(test_checks=TESTS, test_plain="def test_plain():\n    assert 1 == 2\n")
    (project.path / "sub").mkdir()
    monkeypatch.chdir(project.path / "sub")
    result = project.runpytest("--gradcheck", "--tb=line", "-rs", "-k", "wrong or gpu or plain", str(project.path))
    result.assert_outcomes(failed=3, skipped=1)
    output = result.stdout.str()
    said = re.findall(r"^(?:SKIPPED \[\d+\] )?(\S+\.py):(\d+): (?:Failed|CUDA|assert)", output, re.MULTILINE)
    assert {Path(path).name for path, _ in said} == {"test_checks.py", "gradcheck_tiny.py", "test_plain.py"}, output
    for path, _ in said:
        assert (Path.cwd() / path).is_file(), (path, output)
