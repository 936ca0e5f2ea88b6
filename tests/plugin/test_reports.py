"""What a run leaves behind: report files (also under xdist), JUnit properties, the GitHub step summary."""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET

import pytest


def test_report_files_hold_every_variable_of_every_item(project: pytest.Pytester) -> None:
    project.runpytest("--gradcheck", "--gradcheck-report", "out.csv", "--gradcheck-report", "out.json")
    with open(project.path / "out.csv", newline="") as file:
        rows = [(r["case"], r["dtype"], r["variable"], r["status"]) for r in csv.DictReader(file)]
    assert rows == [
        ("tiny-right", "float32", "h", "ok"),
        ("tiny-right", "float32", "w", "ok"),
        ("tiny-right", "float64", "h", "ok"),
        ("tiny-right", "float64", "w", "ok"),
        ("tiny-wrong", "float32", "h", "ok"),
        ("tiny-wrong", "float32", "w", "mismatch"),
    ]
    document = json.loads((project.path / "out.json").read_text())
    assert document["passed"] is False and len(document["rows"]) == 6


def test_the_csv_report_says_nan_where_a_gradient_is_nan_and_keeps_whole_ulps(project: pytest.Pytester) -> None:
    """A NaN gradient's maxdiff was an empty field (nothing measured?), and its ulp, past int64, turned the
    ulp of every row of the report into a float (``0.0``; large ones rounded)."""
    project.makepyfile(
        gradcheck_nan="""
        from gradcheck_kit import register
        from gradcheck_tiny import GRAPH

        register("nan", GRAPH, "dh = 2 * h\\ndw = x.T @ dh * float('nan')", dtypes=("float64",))
        """
    )
    project.runpytest("--gradcheck", "--gradcheck-report", "r.csv", "--gradcheck-report", "r.json")
    with open(project.path / "r.csv", newline="") as file:
        written = list(csv.DictReader(file))
    document = json.loads((project.path / "r.json").read_text())
    nan_w = next(r for r in written if (r["case"], r["variable"]) == ("nan", "w"))
    assert (nan_w["status"], nan_w["maxdiff"]) == ("nonfinite", "nan")
    ulps = [row["ulp"] for row in document["rows"] if row["ulp"] is not None]
    assert any(not isinstance(ulp, int) for ulp in ulps) and 0 in ulps, "a ulp not whole (NaN) beside whole ones"
    for row, line in zip(document["rows"], written, strict=True):
        assert [line[key] for key in ("maxdiff", "ulp")] == [
            "" if row[k] is None else str(row[k]) for k in ("maxdiff", "ulp")
        ]


def test_xdist_writes_one_report_equal_to_the_serial_one(project: pytest.Pytester) -> None:
    project.runpytest("--gradcheck", "--gradcheck-report", "serial.csv")
    result = project.runpytest_subprocess("--gradcheck", "-n", "2", "--gradcheck-report", "xdist.csv")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*gradient checks: 2 passed, 1 failed*"])
    serial = (project.path / "serial.csv").read_text()
    assert serial.count("\n") == 7 and (project.path / "xdist.csv").read_text() == serial


def test_a_crashed_xdist_worker_loses_none_of_the_rows_of_the_tests_it_finished(project: pytest.Pytester) -> None:
    """Workers handed their rows over at the end of the session: a worker that died (a segfault, an OOM kill)
    took the rows of every test it had passed with it, and the count contradicted pytest's."""
    project.makepyfile(test_zcrash="import os\n\ndef test_dies():\n    os._exit(1)\n")
    result = project.runpytest_subprocess("--gradcheck", "-n", "2", "-p", "no:randomly", "--gradcheck-report", "r.csv")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*gradient checks: 2 passed, 1 failed*"])
    with open(project.path / "r.csv", newline="") as file:
        cells = {(r["case"], r["dtype"]) for r in csv.DictReader(file)}
    assert cells == {("tiny-right", "float32"), ("tiny-right", "float64"), ("tiny-wrong", "float32")}


CRASHING = """
import os

from gradcheck_kit import register
from gradcheck_tiny import GRAPH


def kernel(**values):
    os._exit(139)  # a custom kernel's segfault


register("kernel", GRAPH, kernel)
"""


CRASHED = "the pytest-xdist worker running this check crashed (a segfault, an out-of-memory kill?): nothing was judged"


def test_a_gradient_check_whose_xdist_worker_crashed_is_an_error_row(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case or a test using the fixture whose backward killed its worker (a kernel's segfault) was failed by
    pytest ('worker crashed') but missing from the report and the count: with every other check right, the JSON
    said passed and the step summary 'gradient checks: 2 passed' beside pytest's '2 failed'."""
    project.makepyfile(
        gradcheck_crash=CRASHING,
        test_crash="from gradcheck_crash import GRAPH, kernel\n\ndef test_kernel(gradcheck):\n"
        "    gradcheck(GRAPH, kernel, case='fixture-kernel')\n",
    )
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "summary.md"))
    result = project.runpytest_subprocess("--gradcheck", "-n", "2", "-k", "not wrong", "--gradcheck-report", "r.json")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["gradient checks: 2 passed, 2 failed"])
    assert "gradient checks: 2 passed, 2 failed" in (project.path / "summary.md").read_text()
    document = json.loads((project.path / "r.json").read_text())
    crashed = {(row["test_id"], row["case"], row["status"]) for row in document["rows"] if row["status"] != "ok"}
    assert document["passed"] is False and crashed == {
        ("gradcheck_crash.py::kernel[cpu-float32]", "kernel", "error"),
        ("test_crash.py::test_kernel", "test_kernel", "error"),
    }
    messages = {row["message"] for row in document["rows"] if row["status"] == "error"}
    assert messages == {CRASHED}, "no worker id ('gw0', 'gw3'), which changes from run to run"


LOGGED_AFTER_THE_ATTEMPT = """
import pytest
from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    \"\"\"Log a test's reports once it has run, as pytest-rerunfailures does: none before a crash.\"\"\"
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in runtestprotocol(item, nextitem=nextitem, log=False):
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
"""


def test_a_case_whose_worker_crashed_before_any_report_is_an_error_row(project: pytest.Pytester) -> None:
    """Under pytest-rerunfailures a test's reports are logged after its attempt, so a crash leaves none, not even
    the setup's: a case item is known by the location its start gives."""
    project.makepyfile(gradcheck_crash=CRASHING, conftest=LOGGED_AFTER_THE_ATTEMPT)
    result = project.runpytest_subprocess("--gradcheck", "-n", "2", "-k", "not wrong", "--gradcheck-report", "r.csv")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["gradient checks: 2 passed, 1 failed"])
    with open(project.path / "r.csv", newline="") as file:
        assert [(r["case"], r["status"]) for r in csv.DictReader(file) if r["status"] != "ok"] == [("kernel", "error")]


@pytest.mark.parametrize("flags", [[], ["--continue-on-collection-errors"]])
def test_a_case_file_that_cannot_be_imported_is_an_error_row_of_the_report_and_summary(
    project: pytest.Pytester, flags: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report said passed (or held nothing) and the GitHub summary counted only the passing checks."""
    project.makepyfile(gradcheck_broken="from gradcheck_tiny import NO_SUCH_NAME\n")
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("--gradcheck", "-p", "no:randomly", *flags, "--gradcheck-report", "r.json")
    document = json.loads((project.path / "r.json").read_text())
    errors = [row for row in document["rows"] if row["status"] == "error"]
    assert document["passed"] is False and len(errors) == 1
    said = "gradcheck_broken.py: cannot be imported: ImportError: cannot import name 'NO_SUCH_NAME'"
    assert said in errors[0]["message"]
    assert "1 error" in summary.read_text().splitlines()[2]


def test_under_xdist_a_case_file_that_cannot_be_imported_is_one_error_row(project: pytest.Pytester) -> None:
    """The controller and each worker recorded it: three error rows in the JSON and CSV under -n 2."""
    project.makepyfile(gradcheck_broken="from gradcheck_tiny import NO_SUCH_NAME\n")
    project.runpytest_subprocess("--gradcheck", "-n", "2", "--gradcheck-report", "r.json")
    rows = json.loads((project.path / "r.json").read_text())["rows"]
    assert [(row["case"], row["status"]) for row in rows if row["status"] == "error"] == [
        ("gradcheck_broken.py", "error")
    ]


def test_a_case_skipped_by_a_marker_is_counted_and_reported_as_pytest_counts_it(project: pytest.Pytester) -> None:
    """A skipif on a case file skipped its items before they ran: no row, so the count and the report missed it."""
    project.makepyfile(
        gradcheck_gpu="""
        import pytest
        from gradcheck_kit import register
        from gradcheck_tiny import GRAPH, RIGHT

        pytestmark = pytest.mark.skipif(True, reason="needs a GPU runner")
        register("on-gpu", GRAPH, RIGHT)
        """
    )
    result = project.runpytest("--gradcheck", "-p", "no:randomly", "gradcheck_gpu.py", "--gradcheck-report", "r.json")
    result.stdout.fnmatch_lines(["*gradient checks: 1 skipped*"])
    (row,) = json.loads((project.path / "r.json").read_text())["rows"]
    assert (row["case"], row["device"], row["dtype"], row["status"]) == ("on-gpu", "cpu", "float32", "skipped")
    assert row["message"] == "needs a GPU runner"


def test_a_test_using_the_fixture_skipped_by_a_marker_is_counted_as_a_case_is(project: pytest.Pytester) -> None:
    """A skipped case was counted and reported, a skipped test that would have called ``gradcheck(...)`` was not:
    'gradient checks: 1 passed' beside pytest's '1 passed, 1 skipped', and the report had no row for it."""
    project.makepyfile(
        test_gpu="""
        import pytest
        from gradcheck_tiny import GRAPH, RIGHT

        @pytest.mark.skip(reason="needs a GPU runner")
        def test_on_gpu(gradcheck):
            gradcheck(GRAPH, RIGHT, devices=["cuda"])

        def test_on_cpu(gradcheck):
            gradcheck(GRAPH, RIGHT)
        """
    )
    result = project.runpytest("test_gpu.py", "--gradcheck-report", "r.json")
    result.stdout.fnmatch_lines(["gradient checks: 1 passed, 1 skipped"])
    rows = json.loads((project.path / "r.json").read_text())["rows"]
    assert [(row["test_id"], row["status"], row["message"]) for row in rows if row["status"] == "skipped"] == [
        ("test_gpu.py::test_on_gpu", "skipped", "needs a GPU runner")
    ]


TESTCASE_CHILDREN = {"skipped", "error", "failure", "system-out", "system-err"}
"""What junit-10.xsd (pytest's xunit2 family) allows inside a <testcase>: no <properties>."""


def test_junit_xunit2_puts_per_variable_properties_on_the_suite(project: pytest.Pytester) -> None:
    project.runpytest("--gradcheck", "--junitxml", "junit.xml", "--gradcheck-dtype", "float32,float64")
    root = ET.parse(project.path / "junit.xml").getroot()
    assert {child.tag for case in root.iter("testcase") for child in case} <= TESTCASE_CHILDREN
    suite = root.find("testsuite")
    assert [child.tag for child in suite][0] == "properties", "junit-10.xsd: <properties> first in <testsuite>"
    names = [p.get("name") for p in suite.find("properties")]
    assert names == sorted(names)
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    wrong = "gradcheck_tiny.py::tiny-wrong[cpu-float64]::"
    assert props[wrong + "w.status"] == "mismatch" and float(props[wrong + "w.maxdiff"]) > 1
    assert props["gradcheck_tiny.py::tiny-right[cpu-float32]::h.status"] == "ok"


@pytest.mark.parametrize("flags", [[], ["--gradcheck"]])
def test_a_tests_own_properties_that_look_like_ours_stay_in_its_testcase(
    project: pytest.Pytester, flags: list[str]
) -> None:
    """Any property named ``*.status`` or ``*.maxdiff`` was moved to the suite and renamed, with or without
    --gradcheck: only the plugin's own (a row status, and the maxdiff beside it) move."""
    project.makepyfile(
        test_http="""
        def test_api(record_property):
            record_property("http.status", 200)
            record_property("build.status", "green")
            record_property("fit.maxdiff", 0.5)
        """
    )
    project.runpytest("test_http.py", *flags, "--junitxml", "junit.xml", "-o", "junit_family=xunit1")
    (case,) = ET.parse(project.path / "junit.xml").iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {"http.status": "200", "build.status": "green", "fit.maxdiff": "0.5"}


@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
def test_under_xunit2_only_the_plugins_own_properties_move_to_the_suite(
    project: pytest.Pytester, flags: list[str]
) -> None:
    """The plugin took any ``*.status`` holding a row status for its own: a project's ``deploy.status = ok`` was
    moved to the suite and renamed, in every project with the plugin installed, gradients checked or not (and
    the look imported torch). Only the properties the plugin added move now."""
    project.makepyfile(
        test_own="""
        from gradcheck_tiny import GRAPH, RIGHT

        def test_plain(record_property):
            record_property("deploy.status", "ok")

        def test_checked(gradcheck, record_property):
            record_property("fit.maxdiff", 0.5)
            record_property("w.status", "skipped")
            gradcheck(GRAPH, RIGHT)
        """
    )
    project.runpytest_subprocess("test_own.py", "--junitxml", "junit.xml", "-W", "ignore::pytest.PytestWarning", *flags)
    root = ET.parse(project.path / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    own = {name: [(p.get("name"), p.get("value")) for p in case.iter("property")] for name, case in cases.items()}
    assert own == {
        "test_plain": [("deploy.status", "ok")],
        "test_checked": [("fit.maxdiff", "0.5"), ("w.status", "skipped")],
    }
    moved = [p.get("name") for p in root.find("testsuite").find("properties")]
    assert moved == [
        f"test_own.py::test_checked::{name}" for name in ("h.maxdiff", "h.status", "w.maxdiff", "w.status")
    ]


def test_junit_xunit1_keeps_properties_per_testcase_and_cell(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fixture_cells="""
        from gradcheck_tiny import GRAPH, RIGHT

        def test_two_dtypes(gradcheck):
            gradcheck(GRAPH, RIGHT, dtypes=["float32", "float64"])
        """
    )
    project.runpytest("--gradcheck", "--junitxml", "junit.xml", "-o", "junit_family=xunit1")
    cases = {case.get("name"): case for case in ET.parse(project.path / "junit.xml").iter("testcase")}
    wrong = {p.get("name"): p.get("value") for p in cases["tiny-wrong[cpu-float32]"].iter("property")}
    assert wrong["w.status"] == "mismatch" and wrong["h.status"] == "ok" and float(wrong["w.maxdiff"]) > 1
    cells = {p.get("name"): p.get("value") for p in cases["test_two_dtypes"].iter("property")}
    assert cells["w[cpu-float32].status"] == "ok" and cells["w[cpu-float64].status"] == "ok"


def test_junit_names_of_a_tests_later_checks_carry_their_case(project: pytest.Pytester) -> None:
    """A test checking the right backward, then the wrong one with fail=False: 'w.status' was written twice,
    'ok' and 'mismatch', one name with two values."""
    project.makepyfile(
        test_twice="""
        from gradcheck_tiny import GRAPH, RIGHT, WRONG

        def test_right_and_the_bug_caught(gradcheck):
            gradcheck(GRAPH, RIGHT)
            assert not gradcheck(GRAPH, WRONG, fail=False).passed
        """
    )
    project.runpytest("test_twice.py", "--junitxml", "junit.xml", "-o", "junit_family=xunit1")
    (case,) = ET.parse(project.path / "junit.xml").iter("testcase")
    statuses = [(p.get("name"), p.get("value")) for p in case.iter("property") if p.get("name").endswith(".status")]
    assert statuses == [
        ("h.status", "ok"),
        ("w.status", "ok"),
        ("tiny #2.h.status", "ok"),
        ("tiny #2.w.status", "mismatch"),
    ]


@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
def test_junit_properties_whose_names_hold_a_colon_move_to_the_suite(
    project: pytest.Pytester, flags: list[str]
) -> None:
    """A case named 'attn:v2' checked a second time ('attn:v2 #2.w.status') or a device 'cuda:0' among several
    cells ('cell[cuda:0-float32].status') was not taken for the plugin's own: under xunit2 the properties stayed
    inside the testcase, which junit-10.xsd forbids, and were missing from the suite."""
    project.makepyfile(
        test_colons="""
        from gradcheck_tiny import GRAPH, RIGHT, WRONG

        def test_colons(gradcheck):
            gradcheck(GRAPH, RIGHT, case="attn:v2", devices=["cpu", "cuda:0"])
            assert not gradcheck(GRAPH, WRONG, case="attn:v2", fail=False).passed
        """
    )
    result = project.runpytest_subprocess("test_colons.py", "--junitxml", "junit.xml", *flags)
    result.assert_outcomes(passed=1)
    root = ET.parse(project.path / "junit.xml").getroot()
    assert {child.tag for case in root.iter("testcase") for child in case} <= TESTCASE_CHILDREN
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").find("properties")}
    assert props["test_colons.py::test_colons::attn:v2 #2.w.status"] == "mismatch"
    assert props["test_colons.py::test_colons::cell[cuda:0-float32].status"] in ("ok", "skipped")


def test_github_step_summary_gets_the_counts_and_failing_tables(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = project.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("--gradcheck")
    text = summary.read_text()
    assert text.startswith("earlier step\n## gradcheck")
    assert "gradient checks: 2 passed, 1 failed" in text
    assert "### `gradcheck_tiny.py::tiny-wrong[cpu-float32]`" in text and "| w " in text
    assert "tiny-right" not in text


@pytest.mark.parametrize(("param", "fence"), [("a`b", "``"), ("`a", "``"), ("a``b`", "```")])
def test_a_test_id_holding_backticks_is_one_code_span_in_the_step_summary(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, param: str, fence: str
) -> None:
    """The heading of a failing test is its id in a code span: a backtick in a parameter's id closed the span
    early, and GitHub showed part of the id as code and the rest, backtick included, as text."""
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.makepyfile(
        test_ticks=f"""
        import pytest
        from gradcheck_tiny import GRAPH, WRONG

        @pytest.mark.parametrize("tag", [{param!r}])
        def test_ticks(gradcheck, tag):
            gradcheck(GRAPH, WRONG)
        """
    )
    project.runpytest("test_ticks.py")
    heading = next(line for line in summary.read_text().splitlines() if line.startswith("### "))
    assert heading == f"### {fence} test_ticks.py::test_ticks[{param}] {fence}"


def test_a_two_line_error_in_the_step_summary_stays_in_its_variables_rows(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backward that raised a two-line error: each line after the first was a table row of its own under no
    variable, and ``<shape>`` vanished as an HTML tag on GitHub."""
    project.makepyfile(
        gradcheck_raises="""
        from gradcheck_kit import register
        from gradcheck_tiny import GRAPH

        register("raises", GRAPH, "dh = 2 * h\\nraise ValueError('bad input\\\\nexpected <shape>')")
        """
    )
    summary = project.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("--gradcheck", "gradcheck_raises.py")
    rows = [line for line in summary.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["name", "h", "w"]
    assert "bad input<br>expected &lt;shape&gt;" in rows[2]


def test_a_gradcheck_run_that_checked_nothing_says_so(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--gradcheck`` where no case was collected (a -k, cases outside testpaths): the terminal had no gradcheck
    line and the step summary nothing, so a CI that checked no gradient read like any green run."""
    summary = project.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = project.runpytest("--gradcheck", "-k", "plain", "--gradcheck-report", "r.md")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*= gradcheck =*", "report: r.md", "gradient checks: none ran"])
    assert summary.read_text() == "## gradcheck\n\ngradient checks: none ran\n\n"
    assert (project.path / "r.md").read_text() == "No gradients were checked.\n", "it was an empty file"
    summary.unlink()
    project.runpytest("-k", "plain").stdout.no_fnmatch_line("*gradient checks*")
    assert not summary.exists(), "a run without --gradcheck leaves the step summary alone"


def test_the_step_summary_stays_within_what_github_shows(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub drops a step's whole summary past 1 MiB ('$GITHUB_STEP_SUMMARY upload aborted, supports content up
    to a size of 1024k'): the tables were appended whatever the size, after what the step wrote before."""
    summary = project.path / "step-summary.md"
    summary.write_text("x" * (1024 * 1024 - 1500) + "\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("--gradcheck").assert_outcomes(passed=3, failed=1)
    text = summary.read_text()
    assert summary.stat().st_size <= 1024 * 1024
    assert "gradient checks: 2 passed, 1 failed" in text and "### `gradcheck_tiny.py::tiny-wrong" not in text
    assert "The tables of 1 more failing test(s) are left out" in text


def test_an_unwritable_step_summary_is_said_and_the_outcome_kept(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "no-such-folder" / "summary.md"))
    result = project.runpytest("--gradcheck")
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["gradcheck: cannot write the GitHub step summary: *no-such-folder*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_report_in_a_missing_folder_is_written_and_the_failures_kept(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ngradcheck_report = build/reports/gradcheck.csv\n")
    result = project.runpytest("--gradcheck")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*= FAILURES =*", "*tiny-wrong [[]cpu-float32[]]: 1/2 ok*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert (project.path / "build" / "reports" / "gradcheck.csv").read_text().count("\n") == 7


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("report.txt", "cannot tell the report format"),
        ("afile/report.csv", "is not a folder"),
        ("adir.csv", "is a folder"),
        ("/proc/gradcheck-report.json", "cannot create '/proc/gradcheck-report.json'"),  # as root, os.access: yes
    ],
)
def test_an_unwritable_report_is_a_usage_error_before_any_test(
    project: pytest.Pytester, path: str, problem: str
) -> None:
    (project.path / "afile").write_text("a file, not a folder")
    (project.path / "adir.csv").mkdir()
    result = project.runpytest("--gradcheck", "--gradcheck-report", path)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{problem}*"])
    result.stdout.no_fnmatch_line("*tiny*")


def test_a_plain_run_with_a_report_in_ini_writes_nothing(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ngradcheck_report = build/gradcheck.csv\n")
    project.runpytest("--co").assert_outcomes()
    project.runpytest("--co", "--gradcheck").assert_outcomes()
    project.runpytest().assert_outcomes(passed=1)
    assert not (project.path / "build").exists()


PARAMETRIZED = """
import pytest
from gradcheck_tiny import GRAPH, RIGHT, WRONG


@pytest.mark.parametrize("backward", [RIGHT, WRONG], ids=["right", "wrong"])
def test_same_graph(gradcheck, backward):
    gradcheck(GRAPH, backward)
"""


def test_rows_carry_their_test_id_and_parametrized_checks_do_not_merge(project: pytest.Pytester) -> None:
    project.makepyfile(test_param=PARAMETRIZED)
    project.runpytest("test_param.py", "--gradcheck-report", "r.csv", "--gradcheck-report", "r.md")
    with open(project.path / "r.csv", newline="") as file:
        rows = [(r["test_id"], r["case"], r["variable"], r["status"]) for r in csv.DictReader(file)]
    assert rows == [
        ("test_param.py::test_same_graph[right]", "tiny", "h", "ok"),
        ("test_param.py::test_same_graph[right]", "tiny", "w", "ok"),
        ("test_param.py::test_same_graph[wrong]", "tiny", "h", "ok"),
        ("test_param.py::test_same_graph[wrong]", "tiny", "w", "mismatch"),
    ]
    markdown = (project.path / "r.md").read_text()
    assert "test_param.py::test_same_graph[right]: tiny [cpu-float32]: 2/2 ok" in markdown
    assert "test_param.py::test_same_graph[wrong]: tiny [cpu-float32]: 1/2 ok, root cause: w" in markdown


def test_the_html_report_draws_the_failing_gradients_also_under_xdist(project: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib")
    project.runpytest_subprocess("--gradcheck", "-n", "2", "--gradcheck-report", "r.html")
    page = (project.path / "r.html").read_text()
    assert page.count("aria-label='heatmaps of w'") == 1 and "heatmaps of h" not in page


def test_an_empty_failing_gradient_is_drawn_in_the_html_report_not_a_crash(project: pytest.Pytester) -> None:
    """A failing check handing in ``torch.empty(0)`` for a (3, 2) weight: its kept bytes were empty, and rebuilding
    them for the HTML report raised ValueError out of pytest (a traceback, no report written). It is a failure and
    the report is written."""
    pytest.importorskip("matplotlib")
    project.makepyfile(
        test_empty="from gradcheck_tiny import GRAPH\n\n"
        "def test_empty(gradcheck):\n"
        "    gradcheck(GRAPH, 'dh = 2 * h\\ndw = torch.empty(0)')\n"
    )
    result = project.runpytest_subprocess("--gradcheck", "test_empty.py", "--gradcheck-report", "r.html")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert (project.path / "r.html").read_text().count("<table") >= 1


@pytest.mark.skipif(not os.access("/proc", os.W_OK), reason="the startup check refuses /proc for this user")
def test_a_report_the_system_refuses_at_the_end_is_said_and_the_others_written(project: pytest.Pytester) -> None:
    """The report's folder was free at startup; a test put a file in its place before the end (a /proc path did
    this until the startup check asked the system, as root too)."""
    project.makepyfile(
        test_blocks="import pathlib\n\ndef test_blocks():\n    pathlib.Path('out').write_text('not a folder')\n"
    )
    result = project.runpytest("--gradcheck", "--gradcheck-report", "out/gradcheck.csv", "--gradcheck-report", "r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["report not written: out/gradcheck.csv: *", "report: r.json"])
    result.stdout.no_fnmatch_line("report: out/gradcheck.csv")
    assert (project.path / "r.json").exists() and "Traceback" not in result.stdout.str()
