"""A project's own ``gradcheck`` marker and fixture (say, for torch.autograd.gradcheck) are its business."""

from __future__ import annotations

import pytest

OWN_CONFTEST = """
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gradcheck(eps): our own torch.autograd.gradcheck tests")


@pytest.fixture
def gradcheck():
    return lambda function, *args, eps=1e-6: True
"""

OWN_TESTS = """
import sys

import pytest


@pytest.mark.gradcheck(eps=1e-4)
def test_marked():
    assert True


@pytest.mark.skip(reason="later")
def test_skipped(gradcheck):
    assert gradcheck(abs, 1.0)


def test_uses(gradcheck):
    assert gradcheck(abs, 1.0, eps=1e-3)


def test_zz_no_torch():
    assert "torch" not in sys.modules
"""


@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
def test_a_projects_own_gradcheck_marker_and_fixture_are_left_alone(
    pytester: pytest.Pytester, flags: list[str]
) -> None:
    """With the plugin installed, the project's own ``@pytest.mark.gradcheck(eps=1e-4)`` was a usage error before
    any test ran (exit 4, 'unknown gradcheck option(s) ['eps']'), and a skipped test using its own ``gradcheck``
    fixture was counted as a gradient check: torch imported, a 'gradient checks: 1 skipped' section, a row."""
    pytester.makeconftest(OWN_CONFTEST)
    pytester.makepyfile(test_own=OWN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *flags)
    result.assert_outcomes(passed=3, skipped=1)
    assert "gradient checks" not in result.stdout.str() and "unknown gradcheck option" not in result.stderr.str()


WRAPPING_CONFTEST = """
import functools

import pytest


@pytest.fixture
def gradcheck(gradcheck):
    return functools.partial(gradcheck, dtypes=["float64"])
"""

WRAPPED_TESTS = """
import pytest
from gradcheck_tiny import GRAPH, RIGHT


def test_right(gradcheck):
    assert {row.dtype for row in gradcheck(GRAPH, RIGHT).rows} == {"float64"}


@pytest.mark.skip(reason="needs a GPU runner")
def test_on_gpu(gradcheck):
    gradcheck(GRAPH, RIGHT)
"""


def test_a_conftest_fixture_wrapping_the_plugins_is_still_a_gradient_check(project: pytest.Pytester) -> None:
    """A conftest's ``gradcheck`` that requests the plugin's to set defaults is still the plugin's check: its tests
    are counted, a skipped one is a skipped row, and its mistyped marker is said before any test runs."""
    project.makeconftest(WRAPPING_CONFTEST)
    project.makepyfile(test_wrapped=WRAPPED_TESTS)
    result = project.runpytest("--gradcheck", "test_wrapped.py")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["gradient checks: 1 passed, 1 skipped"])
    project.makepyfile(test_wrapped=WRAPPED_TESTS.replace("@pytest.mark.skip(", "@pytest.mark.gradcheck(dtypes='x', "))
    result = project.runpytest("--gradcheck", "test_wrapped.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "@pytest.mark.gradcheck" in result.stderr.str()
