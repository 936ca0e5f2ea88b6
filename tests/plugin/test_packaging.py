"""Installing the plugin costs other projects nothing: no torch import without --gradcheck, one module name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import pytest_gradcheck

NO_TORCH = """
import sys

def test_plugin_loaded_without_torch(request):
    assert request.config.pluginmanager.has_plugin("gradcheck")
    heavy = sorted(m for m in ("torch", "pandas", "gradcheck_kit", "pytest_gradcheck.run") if m in sys.modules)
    assert heavy == []
"""


def test_a_plain_run_imports_no_torch(project: pytest.Pytester) -> None:
    project.makepyfile(test_no_torch=NO_TORCH)
    project.makeini("[pytest]\ngradcheck_report = build/gradcheck.csv\ngradcheck_dtypes = float64\n")
    project.runpytest_subprocess("-p", "no:xdist").assert_outcomes(passed=2)
    assert not (project.path / "build").exists()


def test_pytest_version_imports_no_torch(tmp_path: Path) -> None:
    for args in (["--version"], ["-VV"]):
        run = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "pytest", *args],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        )  # fmt: skip
        imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if "|" in line}
        assert "pytest_gradcheck.options" in imported or args == ["--version"], "-VV loads the plugin"
        assert not imported & {"torch", "pandas", "gradcheck_kit"}, args


def test_the_plugin_package_lives_in_plugins_under_one_name() -> None:
    assert Path(pytest_gradcheck.__file__).parent.parent.name == "plugins"
    assert not (Path(pytest_gradcheck.__file__).parent.parent / "__init__.py").exists()
    assert "plugins" not in sys.modules


def test_the_plugin_knows_every_report_suffix_the_library_writes() -> None:
    from pytest_gradcheck.report_paths import REPORT_SUFFIXES

    from gradcheck_kit.report import FORMATS

    assert set(REPORT_SUFFIXES) == set(FORMATS)


def test_the_plugin_and_the_library_judge_report_paths_alike(tmp_path: Path) -> None:
    """The plugin keeps its own copy of the path check (it may not import torch): the two must agree."""
    from pytest_gradcheck.report_paths import unwritable as plugin_unwritable

    from gradcheck_kit.report import unwritable as library_unwritable

    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "file").write_text("")
    cases = [tmp_path / "new" / "r.csv", tmp_path / "folder.csv", tmp_path / "file" / "r.csv", tmp_path / "r.json"]
    for path in cases:
        assert plugin_unwritable(path) == library_unwritable(path), path
    assert plugin_unwritable(tmp_path / "folder.csv") is not None
