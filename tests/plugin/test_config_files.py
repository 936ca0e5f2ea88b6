"""The plugin's settings as a project's configuration file gives them."""

from __future__ import annotations

import json

import pytest


@pytest.mark.skipif(pytest.version_tuple < (9, 2), reason="pytest.toml and unions of ini types are pytest 9's")
def test_numbers_in_pytest_9s_native_toml_configuration_are_taken_as_numbers(project: pytest.Pytester) -> None:
    """``gradcheck_rtol = 1e-3`` in pytest.toml (or ``[tool.pytest]``) was refused before any test ran: 'config
    option 'gradcheck_rtol' expects a string, got float' (and ``gradcheck_timeout = 30``, 'got int'); pytest's own
    faulthandler_timeout takes a TOML number there. Zero is a number too, not an unset option."""
    project.makefile(".toml", pytest="[pytest]\ngradcheck_rtol = 1e-3\ngradcheck_atol = 0\ngradcheck_timeout = 30\n")
    result = project.runpytest("--gradcheck", "-k", "tiny-wrong", "--gradcheck-report", "r.json")
    result.assert_outcomes(failed=1)
    rows = json.loads((project.path / "r.json").read_text())["rows"]
    assert {(row["rtol"], row["atol"]) for row in rows if row["variable"] == "w"} == {(1e-3, 0.0)}
