"""The data model of a check, ``Row`` and ``Report``, and every view of it.

A Report is a list of rows, one per case × device × dtype × variable, in backprop
order. Tables, DataFrames, CSV, JSON, Markdown and HTML are all built from the same
records (:meth:`Report.records`), so they cannot disagree, and the same rows always
give byte-identical output.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .compare import EXTRA, FAILING, OK, UNCHECKED

ERROR = "error"
"""A whole cell could not be checked (the forward graph raised): one row, no variable."""
SKIPPED = "skipped"
"""A cell that was not run (device unavailable): one row, no variable, the reason as message."""
NOTHING_CHECKED = "No gradients were checked."
"""What a report of no rows says where an empty text would read as a report that lost its contents."""


@dataclass
class Row:
    """One variable of one case on one device and dtype: every figure, the status and why."""

    case: str
    device: str
    dtype: str
    variable: str
    shape: str
    status: str
    exact: bool | None = None
    approximate: bool | None = None
    maxdiff: float | None = None
    rel_err: float | None = None
    ulp: int | float | None = None
    mismatched: int | None = None
    numel: int | None = None
    message: str = ""
    worst_index: str = ""
    worst_manual: float | None = None
    worst_reference: float | None = None
    rtol: float | None = None
    atol: float | None = None
    root_cause: bool = False
    caused_by: str = ""
    hint: str = ""
    line: int | None = None
    k: float | None = None
    floor: float | None = None
    gold_err: float | None = None
    autograd_err: float | None = None
    fd: str = ""
    test_id: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILING or self.status == ERROR

    @property
    def cell(self) -> tuple[str, str, str]:
        return (self.case, self.device, self.dtype)

    def note(self) -> str:
        """The message, the root-cause marking and the hint, in one line for tables."""
        parts = []
        if self.root_cause:
            parts.append("ROOT CAUSE")
        if self.caused_by:
            parts.append(f"follows from {self.caused_by}")
        parts.extend(p for p in (self.message, self.hint and f"hint: {self.hint}") if p)
        return "; ".join(parts)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""How a CSV field begins that spreadsheets read as a formula."""
COLUMNS = tuple(f.name for f in fields(Row))
"""Column names of every tabular view, in order (other tools read them: keep them)."""
INTEGER_COLUMNS = ("mismatched", "numel", "line")
"""Columns that hold whole numbers or nothing: written as integers, never as ``40.0``."""

Key = tuple[str, ...]
"""(case, device, dtype, variable), led by the test id when a row has one: where a row's tensors are
kept in :attr:`Report.tensors`."""


@dataclass
class Report:
    """Rows of one or many checks. ``passed`` when something was checked and no row failed.

    ``tensors`` keeps (manual, autograd) gradients of failing rows for the heatmaps of
    :meth:`plot` and the HTML view; it is never serialised.
    """

    rows: list[Row]
    tensors: dict[Key, tuple[Any, Any]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def merge(cls, reports: Iterable[Report]) -> Report:
        reports = list(reports)
        tensors = {key: pair for report in reports for key, pair in report.tensors.items()}
        return cls([row for report in reports for row in report.rows], tensors)

    @property
    def passed(self) -> bool:
        """Something was checked and nothing failed: a report of skipped cells (no CUDA here) is no pass."""
        return self.checked and not any(row.failed for row in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.failed]

    def counts(self) -> dict[str, int]:
        """Cells (case × device × dtype) by outcome: ``passed``, ``failed`` (an error too) and ``skipped``."""
        outcomes = [_outcome(rows) for _, rows in self.cells()]
        return {kind: outcomes.count(kind) for kind in ("passed", "failed", "skipped")}

    @property
    def checked(self) -> bool:
        """Whether any cell ran at all: a report of skipped cells only has checked nothing."""
        counts = self.counts()
        return counts["passed"] + counts["failed"] > 0

    def __getitem__(self, variable: str) -> Row:
        """The row of ``variable`` (the first one, when the report spans several cells)."""
        for row in self.rows:
            if row.variable == variable:
                return row
        raise KeyError(f"no row for variable {variable!r}; variables: {[r.variable for r in self.rows]}")

    def with_test_id(self, test_id: str) -> Report:
        """This report with every row marked as coming from ``test_id`` (a pytest node id)."""
        rows = [replace(row, test_id=test_id) for row in self.rows]
        tensors = {(test_id, *key[-4:]): pair for key, pair in self.tensors.items()}
        return Report(rows, tensors)

    def cells(self) -> Iterator[tuple[tuple[str, str, str], list[Row]]]:
        """Rows grouped by (case, device, dtype), and by test id when rows have one, in report order."""
        groups: dict[tuple[str, str, str, str], list[Row]] = {}
        for row in self.rows:
            groups.setdefault((row.test_id, *row.cell), []).append(row)
        yield from ((key[1:], rows) for key, rows in groups.items())

    def summary(self) -> str:
        """One line per cell: ``case [device-dtype]: k/N ok`` and the root cause, if any."""
        return "\n".join(_cell_title(cell, rows) for cell, rows in self.cells())

    def records(self) -> list[dict[str, Any]]:
        """Every row as a plain dict, in :data:`COLUMNS` order."""
        return [asdict(row) for row in self.rows]

    def pivot(self, value: str = "status") -> Any:
        """A DataFrame of ``value`` with a row per (case, variable) and a column per (device, dtype).

        A skipped or error cell has no variables: its column holds its status throughout.
        """
        from .pivot import pivot

        return pivot(self.records(), value)

    def to_dataframe(self) -> Any:
        """Every row and column; whole-number columns as nullable integers (no ``40.0``)."""
        import pandas as pd

        frame = pd.DataFrame(self.records(), columns=list(COLUMNS))
        return frame.astype({column: "Int64" for column in INTEGER_COLUMNS})

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV with one row per case × device × dtype × variable; booleans as True/False, NaN and Inf as
        ``nan`` and ``inf``, an empty field for no figure. Each value is written as it is, never through a
        column's dtype (a NaN maxdiff was an empty field, as if nothing had been measured, and one
        non-finite ulp turned every ulp of the report into a rounded float). A text that a spreadsheet would
        take for a formula (a case named ``=HYPERLINK(...)``, a message starting with ``-``) is led by ``'``."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([_csv_field(record[column]) for column in COLUMNS] for record in self.records())
        return _write(path, text.getvalue())

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON ``{"passed": ..., "counts": {...}, "rows": [...]}``; NaN and Inf written as strings.

        ``passed`` is false when nothing was checked (every cell skipped): nothing passed.
        """
        document = {
            "passed": self.passed,
            "counts": self.counts(),
            "rows": [_json_safe(r) for r in self.records()],
        }
        return _write(path, json.dumps(document, indent=2) + "\n")

    def to_table(self, compact: bool = False) -> str:
        """The makemore ``cmp`` view: ``name | exact | approximate | maxdiff`` and, unless compact, more."""
        return self._tables(compact, "simple", str)

    def to_markdown(self, path: str | Path | None = None) -> str:
        """GitHub Markdown: a title line and a table per cell; ``|`` inside a cell is escaped. A report of no
        rows says that no gradient was checked (its file was empty)."""
        return _write(path, (self._tables(False, "github", _escape_md) if self.rows else NOTHING_CHECKED) + "\n")

    def _tables(self, compact: bool, tablefmt: str, escape: Callable[[str], str]) -> str:
        """A title line and a table per cell, every text through ``escape``: the one table builder."""
        from tabulate import tabulate

        blocks = []
        for cell, rows in self.cells():
            headers, body = _table(rows, compact)
            body = [[escape(value) for value in line] for line in body]
            table = tabulate(body, headers, tablefmt=tablefmt, disable_numparse=True) if body else ""
            blocks.append("\n".join(filter(None, [escape(_cell_title(cell, rows)), table])))
        return "\n\n".join(blocks)

    def plot(self, variable: str) -> Any:
        """Heatmaps of ``variable``'s manual gradient, autograd's and their difference (a matplotlib Figure).

        Only failing rows keep their tensors; needs the ``plot`` extra (matplotlib).
        """
        from .plot import heatmaps

        row = self[variable]
        pair = self.tensors.get(_key(row))
        if pair is None:
            raise KeyError(f"no tensors kept for {variable!r} ({row.status}): only failing gradients can be plotted")
        return heatmaps(*pair, title=_plot_title(row))

    def to_html(self, path: str | Path | None = None) -> str:
        """A self-contained HTML page: one table per cell, failing rows coloured, and under each
        table the heatmaps of its failing variables drawn as SVG around embedded PNGs (root causes unfolded)."""
        page = f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>gradcheck-kit report</title>{_STYLE}</head>"
        page += f"<body>{_html_summary(self)}{self._html(roots_only=False)}</body></html>\n"
        return _write(path, page)

    def _repr_html_(self) -> str:
        """Jupyter's view: its own style, the tables, and heatmaps of the root causes only (each takes a
        moment to draw)."""
        return _STYLE + self._html(roots_only=True)

    def _html(self, roots_only: bool) -> str:
        return "".join(
            _html_cell(cell, rows) + _html_heatmaps([r for r in rows if r.root_cause or not roots_only], self.tensors)
            for cell, rows in self.cells()
        )

    def __str__(self) -> str:
        return self.to_table()


def _cell_title(cell: tuple[str, str, str], rows: list[Row]) -> str:
    case, device, dtype = cell
    test = f"{rows[0].test_id}: " if rows[0].test_id else ""
    return test + _cell_verdict(case, device, dtype, rows)


def _outcome(rows: list[Row]) -> str:
    if any(row.failed for row in rows):
        return "failed"
    return "skipped" if all(row.status == SKIPPED for row in rows) else "passed"


def _cell_verdict(case: str, device: str, dtype: str, rows: list[Row]) -> str:
    if not (device or dtype):  # a case file that could not be loaded: no cell at all
        return f"{case}: {rows[0].status}: {rows[0].message}"
    if len(rows) == 1 and rows[0].status in (ERROR, SKIPPED):
        return f"{case} [{device}-{dtype}]: {rows[0].status}: {rows[0].message}"
    variables = [row for row in rows if row.variable]
    ok = sum(row.status == OK for row in variables)
    checked = sum(row.status not in (EXTRA, UNCHECKED) for row in variables)
    title = f"{case} [{device}-{dtype}]: {ok}/{checked} ok"
    roots = [row.variable for row in rows if row.root_cause]
    title = f"{title}, root cause: {', '.join(roots)}" if roots else title
    return "; ".join([title, *(f"{row.status}: {row.message}" for row in rows if not row.variable)])


def _table(rows: list[Row], compact: bool) -> tuple[list[str], list[list[str]]]:
    rows = [row for row in rows if row.variable]
    if compact:
        headers = ["name", "exact", "approximate", "maxdiff"]
        return headers, [[r.variable, _text(r.exact), _text(r.approximate), _text(r.maxdiff)] for r in rows]
    headers = ["name", "shape", "status", "exact", "approximate", "maxdiff", "rel_err", "ulp", "mismatched", "note"]
    body = [
        [
            r.variable,
            r.shape,
            r.status,
            _text(r.exact),
            _text(r.approximate),
            _text(r.maxdiff),
            _short(r.rel_err) if r.failed else "",
            _text(r.ulp) if r.failed else "",
            "" if r.mismatched is None else f"{r.mismatched}/{r.numel}",
            _note(r),
        ]
        for r in rows
    ]
    return headers, body


def _note(row: Row) -> str:
    """The row's note, and the finite-difference spot check when one ran."""
    return "; ".join(filter(None, [row.note(), row.fd and f"finite differences: {row.fd}"]))


CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.DOTALL)
"""A Markdown code span: its text is shown as written, so only ``|`` (which ends a table cell) is escaped there."""


def _escape_md(text: str) -> str:
    """``text`` as GitHub shows it, in a table cell or a title line: ``|`` escaped, and outside code spans
    ``<``, ``>``, ``&`` as entities and line breaks as ``<br>`` (a ``<tag>`` in a message vanished as HTML, and
    a message's second line started a table row of its own, under no variable)."""
    pieces, start = [], 0
    for span in CODE_SPAN.finditer(text):
        pieces += [_escape_prose(text[start : span.start()]), " ".join(span.group().splitlines())]
        start = span.end()
    pieces.append(_escape_prose(text[start:]))
    return "".join(pieces).replace("|", "\\|")


def _escape_prose(text: str) -> str:
    return "<br>".join(html.escape(line, quote=False) for line in text.splitlines())


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_field(value: Any) -> str:
    """``value`` as a CSV field; a text starting as a formula does in Excel, LibreOffice or Google Sheets
    (``= + - @``, a tab, a carriage return) led by ``'``, which they show as text (OWASP's CSV injection
    advice): a case name ``=HYPERLINK(...)`` was a live link, and ``=cmd|...`` in a message ran. Numbers,
    negative ones included, are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return _text(value)


def _short(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def _write(path: str | Path | None, text: str) -> str:
    """Write ``text`` to ``path`` (its folders created), if given, through a temporary file beside it put in its
    place at once; return the text. Written in place, two runs ending together (``tox -p``, two CI jobs sharing
    the ini's report path) could leave one's text with the other's tail, and an interrupted write half a page. A
    link is followed to its file; a device or pipe (``/dev/stdout``), and a file in a folder where no new file can
    be made, are written in place."""
    if path is not None:
        if _special(path):  # /dev/stdout, a pipe: a process substitution's /dev/fd/63 resolves to no real name
            Path(path).write_text(text, encoding="utf-8")
            return text
        target = Path(os.path.realpath(path))  # a link keeps pointing at the report
        target.parent.mkdir(parents=True, exist_ok=True)
        if not _replaced(target, text):
            target.write_text(text, encoding="utf-8")
    return text


def _special(path: str | Path) -> bool:
    """``path`` names a stream: under ``/dev`` or ``/proc`` (``/dev/stdout`` redirected to a file stays the
    stream, not a file to replace), or no regular file where its link leads (a device, a pipe, a socket)."""
    if str(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _replaced(target: Path, text: str) -> bool:
    """Put ``text`` in ``target``'s place through a temporary file beside it; False when none can be made there."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
    except OSError:  # no new file can be made there (a read-only folder, one the user may only write files in)
        temporary.unlink(missing_ok=True)
        return False
    try:
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return True


_STYLE = """<style>
.gck{border-collapse:collapse;font:13px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:0 0 1.5em}
.gck caption{text-align:left;font-weight:bold;padding:4px 0}
.gck th,.gck td{border:1px solid #ccc;padding:2px 8px}
/* doubled class: wins over the equally specific rule with which Jupyter right-aligns table cells */
table.gck.gck th,table.gck.gck td{text-align:left}
.gck th{background:#f3f3f3}
.gck tr.ok td{background:#eaf7ea}
.gck tr.fail td{background:#fbe9e9}
.gck tr.root td{background:#f6c6c6;font-weight:bold}
.gck tr.info td{background:#fff8e1}
.gck td{white-space:nowrap}
.gck td:last-child{white-space:normal;max-width:70em}
.gck-plot{font:13px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:0 0 1em}
.gck-plot summary{cursor:pointer;padding:2px 0}
.gck-plot summary b{color:#a01010}
.gck-plot figure{margin:4px 0}
.gck-plot svg{display:block;max-width:100%;height:auto;border:1px solid #ddd}
.gck-summary{font:14px/1.5 system-ui,sans-serif;margin:0 0 1.5em}
.gck-summary h1{font-size:18px;margin:0 0 4px}
.gck-summary ul{margin:0;padding-left:1.5em}
</style>"""


def _html_summary(report: Report) -> str:
    """The page's first lines: how many cases and cells, by outcome, and each root cause with its hint."""
    counts = report.counts()
    cases = len({row.case for row in report.rows})
    line = f"{cases} case{'s' * (cases != 1)}; cells: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())
    roots = [
        f"<li><b>{html.escape(row.variable)}</b> in {html.escape(_cell_name(row))}: "
        f"{html.escape(row.hint or row.message)}</li>"
        for row in report.rows
        if row.root_cause
    ]
    causes = f"<p>Root causes:</p><ul>{''.join(roots)}</ul>" if roots else ""
    return f"<div class='gck-summary'><h1>gradcheck-kit report</h1><p>{html.escape(line)}</p>{causes}</div>"


def _cell_name(row: Row) -> str:
    return (f"{row.test_id}: " if row.test_id else "") + f"{row.case} [{row.device}-{row.dtype}]"


def _html_cell(cell: tuple[str, str, str], rows: list[Row]) -> str:
    headers, body = _table(rows, compact=False)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = []
    for row, values in zip([r for r in rows if r.variable], body, strict=True):
        kind = "root" if row.root_cause else "fail" if row.failed else "ok" if row.status == OK else "info"
        tds = "".join(f"<td>{html.escape(v)}</td>" for v in values)
        lines.append(f"<tr class='{kind}'>{tds}</tr>")
    caption = html.escape(_cell_title(cell, rows))
    header = f"<tr>{head}</tr>" if lines else ""  # a skipped or error cell says why in its caption alone
    return f"<table class='gck'><caption>{caption}</caption>{header}{''.join(lines)}</table>"


def _html_heatmaps(rows: list[Row], tensors: dict[Key, tuple[Any, Any]]) -> str:
    """A foldable block of heatmaps per failing row with kept tensors; open for root causes."""
    from . import plot

    kept = [(row, tensors[_key(row)]) for row in rows if row.failed and _key(row) in tensors]
    kept = [(row, pair) for row, pair in kept if plot.plottable(pair[0]) and plot.plottable(pair[1])]
    if not kept:
        return ""
    if not plot.available():
        return f"<p class='gck-plot'>{html.escape(plot.MISSING_MATPLOTLIB)}</p>"
    blocks = []
    for row, (manual, reference) in kept:
        label = f"<b>{html.escape(row.variable)}</b> {html.escape(row.status)}"
        label += f": {html.escape(row.hint)}" if row.hint else ""
        image = plot.svg(manual, reference, _plot_title(row))
        name = html.escape(f"heatmaps of {row.variable}")
        blocks.append(
            f"<details class='gck-plot'{' open' if row.root_cause else ''}><summary>{label}</summary>"
            f"<figure role='img' aria-label='{name}'>{image}</figure></details>"
        )
    return "".join(blocks)


def _key(row: Row) -> Key:
    key = (row.case, row.device, row.dtype, row.variable)
    return (row.test_id, *key) if row.test_id else key


def _plot_title(row: Row) -> str:
    return f"{row.variable}: {row.status} ({row.case} [{row.device}-{row.dtype}])"


FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
"""Report formats by file suffix."""


def unwritable(path: str | Path) -> str | None:
    """Why a report cannot be written at ``path`` (a folder, under a file, no permission), or None.

    Asked before any check runs, so a bad path is a usage error rather than a traceback at the end.
    """
    path = Path(path)
    if path.is_dir():
        return f"{str(path)!r} is a folder, not a report file"
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if existing == path:
        return _refused(lambda: open(path, "ab").close(), f"cannot write {str(path)!r}")  # opened, not changed
    if not existing.is_dir():
        return f"cannot create {str(path)!r}: {str(existing)!r} is not a folder"
    return _refused(lambda: tempfile.TemporaryFile(dir=existing).close(), f"cannot create {str(path)!r} in {existing}")


def _refused(attempt: Callable[[], None], what: str) -> str | None:
    """``what`` and the system's reason when ``attempt`` fails; the system is asked, not guessed: as root,
    ``os.access`` says yes to /proc and /sys, where no file can be created."""
    try:
        attempt()
    except OSError as error:
        return f"{what}: {error.strerror or error}"
    return None


def write(report: Report, path: str | Path, fmt: str | None = None) -> None:
    """Write ``report`` to ``path`` (folders created) as ``fmt`` (csv, json, markdown, html),
    by default the format the file's suffix names."""
    fmt = fmt or FORMATS.get(Path(path).suffix.lower())
    writers = {"csv": report.to_csv, "json": report.to_json, "markdown": report.to_markdown, "html": report.to_html}
    if fmt not in writers:
        raise ValueError(f"cannot tell the report format of {str(path)!r}: expected one of {' '.join(FORMATS)}")
    writers[fmt](path)
