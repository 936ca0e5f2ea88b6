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


def unchecked(name: str, tensor: Any, manual: Any = None) -> str:
    """The line for a pair that has no autograd gradient to compare with: the forward tensor, the third argument,
    has no ``.grad``, or is not a tensor; or the two tensors were given the other way round (the second holds the
    ``.grad``: ``cmp('h', h, dh)``)."""
    if _holds_grad(manual):
        why = f"the second argument holds a .grad and the third none: the call is cmp('{name}', d{name}, {name})"
    elif not isinstance(tensor, torch.Tensor):
        why = f"expected the forward tensor as third argument, got {type(tensor).__name__}"
    elif taken := _taken_from(tensor):
        why = taken
    else:
        why = (
            f"{name} has no .grad: call {name}.retain_grad() before loss.backward(), "
            f"or run the forward cell under %%forward"
        )
    return f"{name:15s} | NOT CHECKED: {why}"


def _taken_from(tensor: torch.Tensor) -> str:
    """What the third argument is when it comes from a notebook tensor that holds a ``.grad``: that gradient itself
    (``cmp('logits', dlogits, logits.grad)``), or the tensor without it (``h.detach()``, ``h.data``); "" when it
    is neither, or outside IPython. 'call h.retain_grad()' was untrue of both: the notebook's h had its .grad."""
    running = shell()
    for name, value in (running.user_ns if running is not None else {}).items():
        if name.startswith("_") or value is tensor or not _holds_grad(value):
            continue
        if value.grad is tensor:
            return f"the third argument is {name}.grad, the gradient itself: the call is cmp('{name}', d{name}, {name})"
        if _same_data(value, tensor):
            return f"the third argument is {name} without its .grad (a .detach() or .data of it): pass {name} itself"
    return ""


def _same_data(value: torch.Tensor, tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is ``value``'s data under another tensor object (``.detach()``, ``.data``)."""
    return (
        tensor.shape == value.shape
        and tensor.dtype == value.dtype
        and tensor.device == value.device
        and tensor.data_ptr() == value.data_ptr()
        and tensor.stride() == value.stride()
    )


def _holds_grad(value: Any) -> bool:
    """``value`` is a tensor whose ``.grad`` autograd filled (read without torch's warning for a non-leaf)."""
    if not isinstance(value, torch.Tensor) or not (value.is_leaf or value.retains_grad):
        return False
    return value.grad is not None


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
