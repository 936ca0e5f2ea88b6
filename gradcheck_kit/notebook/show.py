"""How the notebook face writes: one line per ``cmp`` call, and a report as rich output."""

from __future__ import annotations

from typing import Any

import torch

from ..compare import OK
from ..report import Report, Row


def line(name: str, row: Row, caused_by: str = "") -> str:
    """The lecture's ``cmp`` line, then what it cannot see: status, mismatched count, cause or hint."""
    exact, approximate = _text(row.exact), _text(row.approximate)
    text = f"{name:15s} | exact: {exact:5s} | approximate: {approximate:5s} | maxdiff: {_text(row.maxdiff)}"
    if row.status == OK:
        return text
    parts = [f"{row.status.upper()}: {row.message}" if row.message else row.status.upper()]
    if caused_by:
        parts.append(f"follows from {caused_by}")
    elif row.hint:
        parts.append(f"hint: {row.hint}")
    return " | ".join([text, *parts])


def unchecked(name: str, tensor: Any) -> str:
    """The line for a pair that has no autograd gradient to compare with."""
    if not isinstance(tensor, torch.Tensor):
        why = f"expected the forward tensor as third argument, got {type(tensor).__name__}"
    else:
        why = (
            f"{name} has no .grad: call {name}.retain_grad() before loss.backward(), "
            f"or run the forward cell under %%forward"
        )
    return f"{name:15s} | NOT CHECKED: {why}"


def show(report: Report) -> None:
    """Display ``report``: in IPython the HTML table (heatmaps of root causes) with the text table as
    its plain form; elsewhere the text table. The report's stylesheet goes with the HTML, so that
    Jupyter's own table style (right-aligned, striped) does not hide which rows failed."""
    if shell() is None:
        print(report.to_table())
        return
    from IPython.display import display

    display({"text/plain": report.to_table(), "text/html": report._repr_html_()}, raw=True)


def shell() -> Any:
    """The running IPython shell, or None (IPython absent, or not running in it)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _text(value: Any) -> str:
    return "-" if value is None else str(value)
