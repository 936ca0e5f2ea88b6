"""docs/assignments.md is followed as a course would: its commands run, and print and write what it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from grading_support import ROOT

DOC = ROOT / "docs" / "assignments.md"
EXAMPLE = ROOT / "examples" / "layernorm_mlp"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def _blocks(kind: str) -> list[str]:
    return [body for language, body in BLOCK.findall(DOC.read_text()) if language == kind]


def _run(command: str, out: Path) -> subprocess.CompletedProcess[str]:
    """A ``$ gradcheck-kit ...`` line of the doc, run from the repository root with ``results`` in ``out``."""
    command = command.replace("gradcheck-kit", f"{sys.executable} -m gradcheck_kit.cli").replace("results", str(out))
    return subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The doc's grade command, run once: its output folder, what it printed, and what the doc shows."""
    out = tmp_path_factory.mktemp("doc") / "results"
    (block,) = [body for body in _blocks("console") if "gradcheck-kit grade" in body]
    command, shown = block.split("\n", 1)
    result = _run(command.removeprefix("$ "), out)
    assert result.returncode == 0, result.stderr
    return out, result.stdout, shown.replace("results", str(out))


def test_the_check_command_passes_the_reference_solution(tmp_path: Path) -> None:
    (block,) = [body for body in _blocks("console") if "gradcheck-kit check" in body]
    result = _run(block.strip().removeprefix("$ "), tmp_path)
    assert result.returncode == 0 and "layernorm-mlp [cpu-float32]: 16/16 ok" in result.stdout, result.stdout


def test_the_grade_command_prints_the_summary_shown(graded: tuple[Path, str, str]) -> None:
    _, printed, shown = graded
    assert printed == shown


def test_the_gradebook_and_variables_are_those_shown(graded: tuple[Path, str, str]) -> None:
    out = graded[0]
    gradebook, variables = [body for body in _blocks("") if body.startswith(("submission,", "no_mean_branch"))]
    assert (out / "gradebook.csv").read_text().replace("\r\n", "\n") == gradebook
    failing = [line for line in (out / "variables.csv").read_text().splitlines() if ",ok," not in line][1:]
    assert len(failing) == 1 and failing[0].startswith(variables.strip().removesuffix(" ..."))
    assert (out / "correct" / "results.json").is_file()


def test_every_line_of_the_python_blocks_is_shipped_code() -> None:
    shipped = {line.strip() for path in EXAMPLE.glob("*.py") for line in path.read_text().splitlines()}
    missing = [line for block in _blocks("python") for line in block.splitlines() if line.strip() not in shipped]
    assert missing == []


def test_every_assignment_field_is_documented() -> None:
    from dataclasses import fields

    from gradcheck_kit import Assignment

    table = DOC.read_text()
    assert [f.name for f in fields(Assignment) if f"| `{f.name}` |" not in table] == []
