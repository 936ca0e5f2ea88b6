"""The plugin under pytest-randomly: shuffled items, the same report, byte for byte."""

from __future__ import annotations

import pytest


def test_shuffled_runs_write_the_same_report(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pytest_randomly")
    monkeypatch.delenv("PYTEST_ADDOPTS")
    texts = []
    for seed in ("1", "2", "3"):
        result = project.runpytest("--gradcheck", f"--randomly-seed={seed}", "--gradcheck-report", f"{seed}.json")
        result.assert_outcomes(passed=3, failed=1)
        result.stdout.fnmatch_lines([f"Using --randomly-seed={seed}", "gradient checks: 2 passed, 1 failed"])
        texts.append((project.path / f"{seed}.json").read_text())
    assert texts[0] == texts[1] == texts[2]
