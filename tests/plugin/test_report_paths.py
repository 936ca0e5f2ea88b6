"""Report paths as CI configurations write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_report_paths_expand_home_and_environment_variables_as_junitxml_does(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``gradcheck_report = $RUNNER_TEMP/gradcheck.json`` (and ``~/...``, and the same on the command line, as an
    ini's addopts passes it unexpanded) made folders named ``$RUNNER_TEMP`` and ``~`` in the project, where pytest
    expands its own ``--junitxml`` path's. They now land where the variables say; a relative ini path stays
    under the ini file's folder."""
    artifacts, home = tmp_path / "artifacts", tmp_path / "home"
    monkeypatch.setenv("RUNNER_TEMP", str(artifacts))
    monkeypatch.setenv("HOME", str(home))
    project.makeini("[pytest]\ngradcheck_report = $RUNNER_TEMP/gradcheck.json ~/gradcheck.csv local/gradcheck.md\n")
    result = project.runpytest("--gradcheck", "-k", "tiny")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert json.loads((artifacts / "gradcheck.json").read_text())["counts"]["failed"] == 1
    assert (home / "gradcheck.csv").is_file() and (project.path / "local" / "gradcheck.md").is_file()
    result = project.runpytest("--gradcheck", "-k", "tiny", "--gradcheck-report", "$RUNNER_TEMP/given.html")
    assert (artifacts / "given.html").is_file()
    assert not any(path.name in ("$RUNNER_TEMP", "~") for path in project.path.rglob("*"))
