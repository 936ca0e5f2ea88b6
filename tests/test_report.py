"""Every view of a Report: table, compact table, DataFrame, CSV, JSON, Markdown, HTML."""

import csv
import io
import json
import math
import os
import stat
import threading
from dataclasses import replace

import pytest

from gradcheck_kit import Report, Row, write
from gradcheck_kit.report import COLUMNS

REQUIRED = [
    "case",
    "device",
    "dtype",
    "variable",
    "shape",
    "status",
    "exact",
    "approximate",
    "maxdiff",
    "rel_err",
    "ulp",
    "mismatched",
    "message",
]


def sample() -> Report:
    common = {"case": "demo", "device": "cpu", "dtype": "float32"}
    return Report(
        [
            Row(**common, variable="probs", shape="(2, 3)", status="mismatch", exact=False, approximate=False,
                maxdiff=0.5, rel_err=1.0, ulp=12, mismatched=1, numel=6, message="1/6 elements mismatched",
                root_cause=True, hint="sign flip"),
            Row(**common, variable="W", shape="(3,)", status="ok", exact=True, approximate=True, maxdiff=0.0,
                rel_err=0.0, ulp=0, mismatched=0, numel=3),
            Row(**common, variable="b", shape="(3,)", status="nonfinite", exact=False, approximate=False,
                maxdiff=math.nan, mismatched=3, numel=3, caused_by="probs"),
        ]
    )  # fmt: skip


def test_table_looks_like_cmp_and_compact_has_exactly_its_columns():
    table = sample().to_table()
    assert table.splitlines()[0] == "demo [cpu-float32]: 1/3 ok, root cause: probs"
    assert "ROOT CAUSE; 1/6 elements mismatched; hint: sign flip" in table
    assert "follows from probs" in table
    compact = sample().to_table(compact=True).splitlines()
    assert compact[1].split() == ["name", "exact", "approximate", "maxdiff"]
    assert compact[3].split() == ["probs", "False", "False", "0.5"]


def test_csv_has_the_contract_columns_and_python_booleans():
    rows = list(csv.DictReader(io.StringIO(sample().to_csv())))
    assert [column for column in rows[0] if column in REQUIRED] == REQUIRED
    assert (rows[0]["exact"], rows[1]["approximate"], rows[1]["mismatched"]) == ("False", "True", "0")
    assert len(rows) == 3


def test_json_is_valid_with_nan_as_text():
    document = json.loads(sample().to_json())
    assert document["passed"] is False
    assert document["rows"][2]["maxdiff"] == "nan"
    assert list(document["rows"][0]) == list(COLUMNS)


def test_markdown_and_html_views():
    assert "| probs" in sample().to_markdown()
    page = sample().to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "<tr class='root'>" in page and "<tr class='ok'>" in page and "<tr class='fail'>" in page


def test_dataframe_has_a_column_per_field():
    frame = sample().to_dataframe()
    assert list(frame.columns) == list(COLUMNS)
    assert frame.loc[frame.variable == "W", "status"].item() == "ok"


def test_write_picks_the_format_from_the_extension(tmp_path):
    for suffix in (".csv", ".json", ".md", ".html"):
        write(sample(), tmp_path / f"report{suffix}")
        assert (tmp_path / f"report{suffix}").stat().st_size > 0
    with pytest.raises(ValueError, match=r"cannot tell the report format of .*report\.txt"):
        write(sample(), tmp_path / "report.txt")


def test_lookup_by_variable_names_the_choices():
    with pytest.raises(KeyError, match="no row for variable 'nope'"):
        sample()["nope"]


def test_passing_rows_leave_rel_err_and_ulp_blank_failing_rows_show_them():
    table = sample().to_table()
    probs, w = (line.split() for line in table.splitlines() if line.startswith(("probs ", "W ")))
    assert probs[7:9] == ["1", "12"], "a failing row shows rel_err and ulp"
    assert w[3:7] == ["True", "True", "0.0", "0/3"], "a passing row skips them"
    assert sample().to_dataframe().loc[1, "ulp"] == 0, "the data keeps them"


def test_markdown_escapes_pipes_in_cells_and_titles():
    row = Row("a|b", "cpu", "float32", "x", "(1,)", "mismatch", message="expected a | b")
    text = Report([row]).to_markdown()
    assert "a\\|b [cpu-float32]" in text and "expected a \\| b" in text
    body = [line for line in text.splitlines() if line.startswith("| x ")]
    assert len(body) == 1 and body[0].count(" | ") == 9, "one cell per column"


def test_markdown_keeps_a_two_line_message_in_its_row_and_shows_angle_brackets():
    """A message's second line started a table row of its own (under no variable), and ``<tag>`` vanished
    as HTML on GitHub; inside a code span the text is shown as written, so it is left as it is."""
    message = "ValueError: line one\nline two <tag> & more at line 2: `x = a < b | c`"
    rows = [Row("demo", "cpu", "float32", v, "(1,)", "missing", message=message) for v in ("h", "w")]
    text = Report(rows).to_markdown()
    body = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split("|")[1].strip() for line in body] == ["h", "w"], "one table row per variable"
    assert "line one<br>line two &lt;tag&gt; &amp; more at line 2: `x = a < b \\| c`" in body[0]


def test_markdown_of_a_report_with_no_rows_says_nothing_was_checked(tmp_path):
    """``pytest --gradcheck --gradcheck-report r.md`` where no case ran wrote an empty file."""
    write(Report([]), tmp_path / "r.md")
    assert (tmp_path / "r.md").read_text() == "No gradients were checked.\n"


def test_counts_are_cells_by_outcome_and_nothing_checked_is_not_passed():
    skipped = Row("demo", "cuda", "float32", "", "", "skipped", message="no CUDA")
    assert sample().counts() == {"passed": 0, "failed": 1, "skipped": 0}
    only_skipped = Report([skipped])
    assert not only_skipped.passed and not only_skipped.checked, "a wrong backward on an absent device is no pass"
    assert json.loads(only_skipped.to_json())["passed"] is False


def test_csv_writes_whole_number_columns_as_integers():
    rows = list(csv.DictReader(io.StringIO(sample().to_csv())))
    assert [(r["numel"], r["mismatched"], r["line"]) for r in rows] == [("6", "1", ""), ("3", "0", ""), ("3", "3", "")]


def test_csv_writes_each_figure_as_it_is_nan_and_whole_ulps_included():
    """A NaN maxdiff was an empty field (as if nothing had been measured), and one ulp past int64 (a float)
    turned every ulp of the report into a rounded float: 9205605770525145088 read 9.205605770525145e+18."""
    big = replace(sample().rows[0], ulp=9205605770525145088)
    far = replace(sample().rows[2], ulp=1.3820111928653337e19, rel_err=math.inf)
    rows = list(csv.DictReader(io.StringIO(Report([big, sample().rows[1], far]).to_csv())))
    assert [(r["maxdiff"], r["rel_err"], r["ulp"]) for r in rows] == [
        ("0.5", "1.0", "9205605770525145088"),
        ("0.0", "0.0", "0"),
        ("nan", "inf", "1.3820111928653337e+19"),
    ]
    assert [(r["worst_manual"], r["line"]) for r in rows] == [("", "")] * 3, "no figure is an empty field"


def test_test_id_is_a_column_and_tables_keep_tests_apart():
    rows = [replace(r, test_id=t) for r, t in zip(sample().rows[:2], ["t.py::a", "t.py::b"], strict=True)]
    text = Report(rows).to_table()
    assert "t.py::a: demo [cpu-float32]: 0/1 ok" in text and "t.py::b: demo [cpu-float32]: 1/1 ok" in text
    assert list(COLUMNS)[-1] == "test_id"


def test_pivot_keeps_two_tests_checking_one_case_apart():
    """The plugin's report holds one case checked by several tests: pivot keyed rows by (case, variable) only,
    so the later test's status overwrote the earlier's and a passing test's row was lost."""
    right, wrong = (replace(sample().rows[1], test_id=t) for t in ("t.py::test_right", "t.py::test_wrong"))
    wrong.status = "mismatch"
    frame = Report([right, wrong]).pivot()
    assert list(frame.index.names) == ["test_id", "case", "variable"]
    assert frame[("cpu", "float32")].tolist() == ["ok", "mismatch"]
    assert list(sample().pivot().index.names) == ["case", "variable"], "rows without test ids keep their index"


def test_csv_leads_texts_a_spreadsheet_would_run_as_formulas_with_a_quote():
    """A case named ``=HYPERLINK("http://x","ce")`` was a live link in Excel, LibreOffice and Google Sheets, and a
    message starting ``=``, ``+``, ``-`` or ``@`` a formula; numbers, negative ones too, stay numbers."""
    row = replace(
        sample().rows[0], case='=HYPERLINK("http://x","ce")', message="-2+3 off", hint="@sum", worst_manual=-0.5
    )
    record = next(csv.DictReader(io.StringIO(Report([row]).to_csv())))
    assert (record["case"], record["message"], record["hint"]) == (
        '\'=HYPERLINK("http://x","ce")',
        "'-2+3 off",
        "'@sum",
    )
    assert (record["worst_manual"], record["variable"], record["status"]) == ("-0.5", "probs", "mismatch")


def test_a_report_file_is_replaced_whole(tmp_path):
    """Two runs writing one report path (``tox -p`` under one ini's ``gradcheck_report``) wrote it in place: a
    longer report's tail could outlive a shorter one's text, and a reader of the earlier file saw it change under
    it. The new text now takes the path at once; the earlier file stays whole, and no temporary is left."""
    path = tmp_path / "out" / "report.csv"
    write(Report(sample().rows * 50), path)
    with open(path, encoding="utf-8") as earlier:
        write(sample(), path)
        assert earlier.read() == Report(sample().rows * 50).to_csv()
    assert path.read_text(encoding="utf-8") == sample().to_csv()
    assert [p.name for p in path.parent.iterdir()] == ["report.csv"]


def test_a_report_path_that_is_a_link_or_a_pipe_is_written_through(tmp_path):
    """Replacing the report whole (a temporary file put in its place) replaced a link with a file, leaving the
    linked report as it was, and a pipe (or /dev/stdout) with a file no reader ever saw."""
    real = tmp_path / "kept" / "report.csv"
    real.parent.mkdir()
    real.write_text("earlier\n")
    link = tmp_path / "report.csv"
    link.symlink_to(real)
    sample().to_csv(link)
    assert link.is_symlink() and real.read_text() == sample().to_csv()
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()), daemon=True)
    reader.start()
    sample().to_csv(pipe)
    reader.join(timeout=30)
    assert received == [sample().to_csv()] and stat.S_ISFIFO(os.stat(pipe).st_mode)


def test_a_report_given_as_a_process_substitution_reaches_its_pipe():
    """``--json >(head -c 20)`` names /dev/fd/63, a pipe whose real path is no file name ('pipe:[2448607]'): the
    report went to a temporary file in /proc/<pid>/fd and the command said 'No such file or directory'."""
    read_end, write_end = os.pipe()
    try:
        sample().to_csv(f"/dev/fd/{write_end}")
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == sample().to_csv()
