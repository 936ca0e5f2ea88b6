"""``pytest --gradcheck``: registered cases become items, judged by the options, failing with the table."""

from __future__ import annotations

import csv

import pytest
import torch


def test_without_the_flag_case_files_are_not_collected(project: pytest.Pytester) -> None:
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*tiny*")
    result.stdout.no_fnmatch_line("*= gradcheck =*")


def test_each_case_device_and_dtype_is_an_item(project: pytest.Pytester) -> None:
    result = project.runpytest("--gradcheck", "-v")
    result.stdout.fnmatch_lines_random(
        [
            "gradcheck_tiny.py::tiny-right[[]cpu-float32[]] PASSED*",
            "gradcheck_tiny.py::tiny-right[[]cpu-float64[]] PASSED*",
            "gradcheck_tiny.py::tiny-wrong[[]cpu-float32[]] FAILED*",
            "test_plain.py::test_plain PASSED*",
        ]
    )
    result.assert_outcomes(passed=3, failed=1)


@pytest.mark.parametrize("how", ["named", "python_files"])
def test_a_case_file_pytest_also_collects_as_a_module_is_collected_once(project: pytest.Pytester, how: str) -> None:
    """A case file named on the command line, or matched by ``python_files``, is a test module to pytest as well:
    one that could not be imported was two errors ('2 errors during collection') and two error rows of the
    report; one that could kept its items only through the case names both collectors share."""
    project.makepyfile(gradcheck_broken="from gradcheck_tiny import NO_SUCH_NAME\n")
    if how == "python_files":
        project.makeini("[pytest]\npython_files = test_*.py gradcheck_*.py\n")
    named = ["gradcheck_broken.py", "gradcheck_tiny.py", "test_plain.py"] if how == "named" else []
    result = project.runpytest("--gradcheck", *named, "--gradcheck-report", "r.csv", "--continue-on-collection-errors")
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*gradient checks: 2 passed, 1 failed, 1 error*"])
    with open(project.path / "r.csv", newline="") as file:
        statuses = [(r["case"], r["status"]) for r in csv.DictReader(file) if r["status"] in ("error", "mismatch")]
    assert statuses == [("gradcheck_broken.py", "error"), ("tiny-wrong", "mismatch")]


def test_a_wrong_gradient_fails_with_the_table_and_no_traceback(project: pytest.Pytester) -> None:
    result = project.runpytest("--gradcheck")
    failure = result.stdout.str().split("gradcheck tiny-wrong[cpu-float32] _")[1].split("= gradcheck =")[0]
    lines = [line.split() for line in failure.splitlines()[1:] if line.strip()]
    assert lines[0][:4] == ["tiny-wrong", "[cpu-float32]:", "1/2", "ok,"]
    assert [line[0] for line in lines[3:5]] == ["w", "h"], "the failing row comes first"
    assert lines[3][3] == "mismatch" and "ROOT" in lines[3]
    assert "Traceback" not in failure and "pytest_gradcheck" not in failure and "gradcheck_kit" not in failure


@pytest.mark.parametrize("on_ci", [False, True], ids=["terminal", "ci"])
def test_each_failing_table_is_printed_once_as_tb_says(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, on_ci: bool
) -> None:
    """On CI (``$CI`` set) and under ``-vv`` pytest prints the whole crash message in the short summary:
    it is the headline alone there, so the table (its hint) still appears once."""
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    if on_ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    table_row = "hint: off by a factor n-1"
    quiet = project.runpytest("--gradcheck").stdout.str()
    assert quiet.count(table_row) == 1 and "tiny-right [cpu" not in quiet
    assert "gradient checks: 2 passed, 1 failed" in quiet.split("= gradcheck =")[1]
    for verbosity in ("-v", "-vv"):
        verbose = project.runpytest("--gradcheck", verbosity).stdout.str()
        assert verbose.count(table_row) == 1 and "2/2 ok" not in verbose
    summary = verbose.split("short test summary info")[1]
    assert "FAILED gradcheck_tiny.py::tiny-wrong[cpu-float32] - Failed: tiny-wrong [cpu-float32]: 1/2 ok" in summary
    no_tb = project.runpytest("--gradcheck", "--tb=no").stdout.str()
    assert table_row not in no_tb and "gradient checks: 2 passed, 1 failed" in no_tb


def test_cases_registered_by_a_test_module_take_its_marker(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_registers="""
        import pytest
        from gradcheck_kit import register
        from gradcheck_tiny import GRAPH, RIGHT

        pytestmark = pytest.mark.gradcheck(dtypes=["float64"])
        register("in-a-test", GRAPH, RIGHT)

        def test_other():
            pass
        """
    )
    result = project.runpytest("--gradcheck", "-v", "test_registers.py")
    result.stdout.fnmatch_lines(
        ["test_registers.py::test_other PASSED*", "test_registers.py::in-a-test[[]cpu-float64[]] PASSED*"]
    )
    result.assert_outcomes(passed=2)


def test_command_line_options_choose_dtypes_and_the_deciding_check(project: pytest.Pytester) -> None:
    loose = project.runpytest("--gradcheck", "--gradcheck-dtype", "float64", "--gradcheck-maxdiff", "100", "-v")
    loose.stdout.fnmatch_lines_random(["*tiny-wrong[[]cpu-float64[]] PASSED*", "*tiny-right[[]cpu-float64[]] PASSED*"])
    loose.assert_outcomes(passed=3)
    exact = project.runpytest("--gradcheck", "--gradcheck-check", "exact", "--gradcheck-dtype", "float64")
    exact.assert_outcomes(passed=2, failed=1)
    tolerant = project.runpytest("--gradcheck", "--gradcheck-rtol", "2.5", "--gradcheck-atol", "0")
    tolerant.assert_outcomes(passed=4)


def test_a_device_or_dtype_named_twice_is_one_item_and_one_check(project: pytest.Pytester) -> None:
    """``--gradcheck-dtype float32,float32`` made two items with one node id (each case ran twice, counted twice),
    and ``dtypes=["float32", "float32"]`` checked the cell twice in one test."""
    project.makepyfile(
        test_twice="""
        from gradcheck_tiny import GRAPH, RIGHT

        def test_one_cell(gradcheck):
            assert len(gradcheck(GRAPH, RIGHT, dtypes=["float32", "float32"]).rows) == 2
        """
    )
    result = project.runpytest("--gradcheck", "--gradcheck-dtype", "float32,float32", "--gradcheck-device", "cpu,cpu")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["gradient checks: 2 passed, 1 failed"])


def test_ini_options(project: pytest.Pytester) -> None:
    project.makeini(
        """
        [pytest]
        gradcheck_dtypes = float64
        gradcheck_check = maxdiff
        gradcheck_maxdiff = 100
        gradcheck_report = from-ini.csv
        """
    )
    result = project.runpytest("--gradcheck", "-v")
    result.stdout.fnmatch_lines_random(["*tiny-wrong[[]cpu-float64[]] PASSED*", "*tiny-right[[]cpu-float32[]] PASSED*"])
    result.assert_outcomes(passed=4)
    assert "tiny-wrong,cpu,float64,w" in (project.path / "from-ini.csv").read_text()


def test_bad_options_are_usage_errors(project: pytest.Pytester) -> None:
    assert project.runpytest("--gradcheck", "--gradcheck-rtol", "1e-3").ret == pytest.ExitCode.USAGE_ERROR
    assert project.runpytest("--gradcheck", "--gradcheck-check", "close").ret == pytest.ExitCode.USAGE_ERROR
    result = project.runpytest("--gradcheck", "--gradcheck-report", "report.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot tell the report format of 'report.txt'*"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_fixture_report_of_skipped_cells_only_is_not_passed(project: pytest.Pytester) -> None:
    """With fail=False the test reads the report itself: a wrong backward on an absent device read passed."""
    project.makepyfile(
        test_cuda="""
        from gradcheck_tiny import GRAPH, WRONG

        def test_wrong_on_cuda(gradcheck):
            report = gradcheck(GRAPH, WRONG, devices=("cuda",), fail=False)
            assert not report.passed and not report.checked
        """
    )
    project.runpytest("test_cuda.py", "--gradcheck").assert_outcomes(passed=1)


MISTYPED_MARKERS = ['gradcheck(dtype="float64")', 'gradcheck("float64")', 'gradcheck(dtypes="flaot64")']


@pytest.mark.parametrize("marker", MISTYPED_MARKERS)
def test_a_mistyped_gradcheck_marker_is_a_usage_error_before_any_test_runs(
    project: pytest.Pytester, marker: str
) -> None:
    """It was an error at the marked test's setup, with the plugin's frames, after the other tests had run."""
    project.makepyfile(
        test_marked=f"""
        import pytest

        def test_first():
            pass

        @pytest.mark.{marker}
        def test_half(gradcheck):
            pass
        """
    )
    result = project.runpytest("test_marked.py", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "@pytest.mark.gradcheck" in result.stderr.str()
    assert "test_first PASSED" not in result.stdout.str() and "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("marker", MISTYPED_MARKERS)
def test_under_xdist_a_mistyped_gradcheck_marker_is_said_and_its_test_not_run(
    project: pytest.Pytester, marker: str
) -> None:
    """A worker's usage error is more than pytest-xdist handles: the run ended in an INTERNALERROR ('assert not
    crashitem') and the marker's problem was never said. Each worker reports it as an error collecting the test's
    module, once, and leaves the test out; the others run, as xdist runs them beside any collection error."""
    project.makepyfile(
        test_marked=f"""
        import pytest

        def test_first():
            pass

        @pytest.mark.{marker}
        def test_half(gradcheck):
            pass
        """
    )
    result = project.runpytest_subprocess("test_marked.py", "-n", "2")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_marked.py*", "@pytest.mark.gradcheck*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
@pytest.mark.parametrize("module", ["gradcheck_marked", "test_marked"])
def test_a_mistyped_pytestmark_of_a_module_registering_cases_is_one_collection_error(
    project: pytest.Pytester, module: str, flags: list[str]
) -> None:
    """A case file's mistyped ``pytestmark`` was an error collecting it with the plugin's frames (twice under
    -n 2); a test module's was a usage error serially and, under -n 2, said nothing at all: 'no tests ran'."""
    project.makepyfile(
        **{
            module: """
            import pytest
            from gradcheck_kit import register
            from gradcheck_tiny import GRAPH, RIGHT

            pytestmark = pytest.mark.gradcheck(dtypes="flaot64")
            register("marked", GRAPH, RIGHT)
            """
        }
    )
    result = project.runpytest_subprocess("--gradcheck", "-k", "marked", *flags)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*ERROR collecting {module}.py*", "@pytest.mark.gradcheck: unknown dtype 'flaot64'*"])
    assert "options.py" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "ini", "said"),
    [
        (["--gradcheck-dtype", "flaot32"], "", "command line: unknown dtype 'flaot32'"),
        (["--gradcheck-device", "cdua"], "", "command line: unknown device 'cdua'"),
        (["--gradcheck-tolerance", "makemor"], "", "command line: unknown tolerance 'makemor'"),
        ([], "gradcheck_dtypes = flaot64", "ini file: unknown dtype 'flaot64'"),
        (["--gradcheck-check", "maxdiff", "--gradcheck-maxdiff", "-1"], "", "maxdiff must be a finite number >= 0"),
        (["--gradcheck-rtol", "nan", "--gradcheck-atol", "nan"], "", "rtol must be a finite number >= 0"),
        ([], "gradcheck_atol = -1e-3\ngradcheck_rtol = 0", "ini file: gradcheck atol must be a finite number >= 0"),
    ],
)
def test_mistyped_names_and_impossible_numbers_are_usage_errors_before_anything_runs(
    project: pytest.Pytester, args: list[str], ini: str, said: str
) -> None:
    """Each was N failing checks (a mistyped dtype) or a ValueError traceback per item (a negative maxdiff)."""
    if ini:
        project.makeini(f"[pytest]\n{ini}\n")
    result = project.runpytest("--gradcheck", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert said in result.stderr.str() and "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_devices_are_skipped_with_the_reason(project: pytest.Pytester) -> None:
    result = project.runpytest("--gradcheck", "--gradcheck-device", "cpu,cuda", "-rs")
    result.assert_outcomes(passed=3, failed=1, skipped=3)
    result.stdout.fnmatch_lines_random(
        ["SKIPPED [[]2[]] gradcheck_tiny.py:20: CUDA is not available*", "SKIPPED [[]1[]] gradcheck_tiny.py:21: CUDA*"]
    )


LOW_PRECISION = """
from gradcheck_kit import register
from gradcheck_tiny import GRAPH, RIGHT

register("half", GRAPH, RIGHT, dtypes=("bfloat16",))
register("half-by-rule", GRAPH, RIGHT, dtypes=("bfloat16",), rule="reference")
"""


def _rules(pytester: pytest.Pytester, *args: str) -> dict[str, str]:
    """Run the half-precision cases; which rule judged each case (the CSV's ``k`` is set by the rule only)."""
    pytester.runpytest("--gradcheck", "gradcheck_half.py", "--gradcheck-report", "r.csv", *args)
    with open(pytester.path / "r.csv", newline="") as file:
        return {
            row["test_id"].split("::")[-1]: "reference" if row["k"] else "tolerance" for row in csv.DictReader(file)
        }


def test_the_reference_rule_from_register_ini_command_line_and_marker(project: pytest.Pytester) -> None:
    project.makepyfile(gradcheck_half=LOW_PRECISION)
    both = ("half[cpu-bfloat16]", "half-by-rule[cpu-bfloat16]")
    assert _rules(project) == dict.fromkeys(both, "reference"), "a half-precision cell's default is the rule"
    assert _rules(project, "--gradcheck-rule", "reference") == dict.fromkeys(both, "reference")
    project.makeini("[pytest]\ngradcheck_rule = tolerance\n")
    assert _rules(project) == {both[0]: "tolerance", both[1]: "reference"}, "register() beats ini"
    assert _rules(project, "--gradcheck-rule", "tolerance") == dict.fromkeys(both, "tolerance")
    project.makepyfile(
        test_marked="""
        import pytest
        from gradcheck_tiny import GRAPH, RIGHT

        @pytest.mark.gradcheck(rule="reference", dtypes=["bfloat16"])
        def test_half(gradcheck):
            report = gradcheck(GRAPH, RIGHT)
            assert report.passed and {row.k for row in report.rows} == {2.0}
        """
    )
    project.runpytest("test_marked.py", "--gradcheck-rule", "tolerance").assert_outcomes(passed=1)
    bad = project.runpytest("--gradcheck", "--gradcheck-rule", "loose")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


ROUNDED = """
from gradcheck_kit import Graph, register


def forward(x):
    y = x.tanh()
    loss = (y**3).sum()
    return loss


def inputs():
    import torch

    return {"x": torch.randn(3, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)}


# right, but 2 of 12 elements 1 ulp from autograd's in float64
register("rounded", Graph("tanh3", forward, inputs), "dy = 3 * y**2\\ndx = dy * (1 - y**2)", dtypes=("float64",),
         rule="reference")
"""


def test_an_exact_or_maxdiff_check_is_never_decided_by_the_reference_rule(project: pytest.Pytester) -> None:
    """``--gradcheck-check exact`` passed a gradient 1 ulp off when the case or the ini file chose the reference
    rule, which then judged instead; both in one scope were accepted, the check silently ignored."""
    project.makepyfile(gradcheck_rounded=ROUNDED)
    project.runpytest("--gradcheck", "gradcheck_rounded.py").assert_outcomes(passed=1)
    project.runpytest("--gradcheck", "gradcheck_rounded.py", "--gradcheck-check", "exact").assert_outcomes(failed=1)
    project.makeini("[pytest]\ngradcheck_rule = reference\n")
    strict = project.runpytest("--gradcheck", "gradcheck_rounded.py", "--gradcheck-maxdiff", "1e-18")
    strict.assert_outcomes(failed=1)
    both = project.runpytest("--gradcheck", "--gradcheck-check", "exact", "--gradcheck-rule", "reference")
    assert both.ret == pytest.ExitCode.USAGE_ERROR
    both.stderr.fnmatch_lines(["*the exact check and the reference rule each decide pass/fail: give one of them*"])


def test_a_cases_own_dtypes_beat_ini_but_not_the_command_line(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ngradcheck_dtypes = float16\n")
    from_ini = project.runpytest("--gradcheck", "gradcheck_tiny.py", "-v", "--gradcheck-check", "maxdiff",
                                 "--gradcheck-maxdiff", "100")  # fmt: skip
    from_ini.stdout.fnmatch_lines_random(
        [
            "*tiny-right[[]cpu-float32[]] PASSED*",
            "*tiny-right[[]cpu-float64[]] PASSED*",
            "*tiny-wrong[[]cpu-float16[]]*",
        ]
    )
    from_ini.assert_outcomes(passed=3)
    from_command_line = project.runpytest("--gradcheck", "gradcheck_tiny.py", "--gradcheck-dtype", "float64", "-v")
    from_command_line.stdout.fnmatch_lines_random(["*tiny-right[[]cpu-float64[]]*", "*tiny-wrong[[]cpu-float64[]]*"])
    from_command_line.assert_outcomes(passed=1, failed=1)


XFAILS = """
import pytest
from gradcheck_tiny import GRAPH, RIGHT, WRONG


@pytest.mark.xfail(strict=True, reason="the wrong backward must be caught")
def test_caught(gradcheck):
    gradcheck(GRAPH, WRONG)


@pytest.mark.xfail(reason="expected to fail, but right")
def test_unexpectedly_right(gradcheck):
    gradcheck(GRAPH, RIGHT)


def test_right(gradcheck):
    gradcheck(GRAPH, RIGHT)
"""


def test_xfail_and_xpass_are_counted_as_pytest_counts_them(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_xfails=XFAILS)
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = project.runpytest("test_xfails.py")
    result.assert_outcomes(passed=1, xfailed=1, xpassed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["gradient checks: 1 passed, 1 xfailed, 1 xpassed"])
    assert "gradient checks: 1 passed, 1 xfailed, 1 xpassed" in summary.read_text() and "###" not in summary.read_text()


HELPERS = """
from gradcheck_kit import register
from gradcheck_tiny import GRAPH, WRONG

register("hidden", GRAPH, WRONG)
"""


def test_a_case_in_a_helper_module_that_never_runs_is_warned_about(project: pytest.Pytester) -> None:
    project.makepyfile(helpers=HELPERS, test_uses_helpers="import helpers\n\ndef test_uses():\n    pass\n")
    result = project.runpytest("--gradcheck", "test_uses_helpers.py", "-W", "always")
    result.stdout.fnmatch_lines(
        ["*helpers.py:4: GradcheckWarning: gradcheck case 'hidden' is registered in helpers.py*"]
    )


def test_under_xdist_a_case_that_never_runs_is_warned_about_once(project: pytest.Pytester) -> None:
    """Each worker collects the same modules and warned on its own: -n 2 said '2 warnings', the one twice."""
    project.makepyfile(helpers=HELPERS, test_uses_helpers="import helpers\n\ndef test_uses():\n    pass\n")
    result = project.runpytest_subprocess("--gradcheck", "test_uses_helpers.py", "-n", "2", "-W", "always")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.stdout.str().count("GradcheckWarning: gradcheck case 'hidden'") == 1


@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
def test_under_warnings_as_errors_a_case_that_never_runs_is_a_collection_error(
    project: pytest.Pytester, flags: list[str]
) -> None:
    """``filterwarnings = error``, common in CI, made the warning an INTERNALERROR with the plugin's traceback."""
    project.makepyfile(helpers=HELPERS, test_uses_helpers="import helpers\n\ndef test_uses():\n    pass\n")
    project.makeini("[pytest]\nfilterwarnings = error\n")
    result = project.runpytest_subprocess("--gradcheck", "test_uses_helpers.py", *flags)
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    result.stdout.fnmatch_lines(
        ["*ERROR collecting helpers.py*", "helpers.py:4: GradcheckWarning: gradcheck case 'hidden' is registered*"]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_pytestmark_of_a_case_file_applies_and_minus_m_selects_cases(project: pytest.Pytester) -> None:
    project.makepyfile(
        gradcheck_marked="""
        import pytest
        from gradcheck_kit import register
        from gradcheck_tiny import GRAPH, WRONG

        pytestmark = [pytest.mark.gradcheck(check="maxdiff", maxdiff=100.0), pytest.mark.slow]
        register("marked", GRAPH, WRONG)
        """
    )
    project.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    marked = project.runpytest("--gradcheck", "gradcheck_marked.py", "-v")
    marked.stdout.fnmatch_lines(["*marked[[]cpu-float32[]] PASSED*"])
    project.runpytest("--gradcheck", "-m", "slow").assert_outcomes(passed=1)
    selected = project.runpytest("--gradcheck", "-m", "gradcheck")
    selected.assert_outcomes(passed=3, failed=1)
    selected.stdout.no_fnmatch_line("*test_plain*")


def test_a_failure_is_reported_at_the_register_line(project: pytest.Pytester) -> None:
    result = project.runpytest("--gradcheck", "--tb=line")
    result.stdout.fnmatch_lines(["*gradcheck_tiny.py:21*"])


def test_a_timeout_from_ini_stops_an_endless_backward(project: pytest.Pytester) -> None:
    project.makepyfile(
        gradcheck_loop="""
        from gradcheck_kit import register
        from gradcheck_tiny import GRAPH

        register("loops", GRAPH, "dh = 2 * h\\nwhile True:\\n    pass\\n")
        """
    )
    project.makeini("[pytest]\ngradcheck_timeout = 0.5\n")
    result = project.runpytest("--gradcheck", "gradcheck_loop.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*past its timeout and was stopped at line 2*"])
    assert project.runpytest("--gradcheck", "--gradcheck-timeout", "-1").ret == pytest.ExitCode.USAGE_ERROR


def test_a_forward_that_raises_fails_its_item_naming_the_file_and_line(project: pytest.Pytester) -> None:
    project.makepyfile(
        gradcheck_raises="""
        import torch
        from gradcheck_kit import Graph, register


        def inputs():
            return {"w": torch.ones(3, requires_grad=True)}


        def forward(w):
            h = w.reshape(7)
            loss = h.sum()
            return loss


        register("raises", Graph("raises", forward, inputs), "dh = torch.ones(7)")
        """
    )
    result = project.runpytest("--gradcheck", "gradcheck_raises.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["raises [[]cpu-float32[]]: error: *gradcheck_raises.py, line 10: h = w.reshape(7)*"])
    assert "Traceback" not in result.stdout.str()
