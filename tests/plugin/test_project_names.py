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
