"""``cmp``: the lecture's own comparison helper, checking through the library instead.

``cmp('logprobs', dlogprobs, logprobs)`` prints the lecture's line (exact, approximate,
maxdiff) and what that line cannot see: a wrong shape that broadcasts, how many
elements are off, the gradient it follows from or the likely mistake. The calls of
one cell form one check. In IPython the cell's pairs are checked together when the
cell ends (one batched evaluation): the lines, then the whole table in backprop order
with the root cause marked. Elsewhere each call prints its line at once and
``cmp.report()`` gives the table.
"""

from __future__ import annotations

from typing import Any

import torch

from ..capture import Capture
from ..check import evaluate
from ..compare import WRONG_VALUE
from ..diagnose import root_causes
from ..report import SKIPPED, Report, Row
from . import sources, state
from .show import line, shell, show, unchecked
from .tensors import capture_of

CASE = "cmp"


class Cmp:
    """``cmp(name, manual, tensor)`` against ``tensor.grad``; the calls since the last cell form one report.

    ``defer`` holds every line back to the end of the cell (default: in IPython only).
    """

    def __init__(self, defer: bool | None = None) -> None:
        self.defer = defer
        self._pairs: dict[str, tuple[Any, torch.Tensor]] = {}
        self._calls: dict[str, tuple[str, Any, str]] = {}
        self._statuses: dict[str, str] = {}
        self._hooked: Any = None

    def __call__(self, name: str, manual: Any, tensor: Any) -> None:
        """Check ``manual`` against ``tensor.grad`` and print one line (at the end of the cell in IPython)."""
        deferred = self._hook() if self.defer is None else self.defer
        label = str(name)
        key = self._key(label, tensor)
        self._calls.pop(key, None)
        self._pairs.pop(key, None)
        if _grad(tensor) is None:
            self._calls[key] = (label, tensor, unchecked(label, tensor, manual))
        else:
            self._pairs[key] = (manual, tensor)
            self._calls[key] = (label, tensor, "")
        if not deferred:
            print(self._calls[key][2] or self._line_now(key, label))

    def report(self) -> Report:
        """Every pair checked since the cell began (or since :meth:`reset`), in backprop order;
        a skipped row when there is none."""
        if not self._pairs:
            dtype = str(torch.get_default_dtype()).removeprefix("torch.")
            unchecked = ", ".join(label for label, _, _ in self._calls.values())
            message = (
                f"nothing checked: {unchecked} not checked (above)" if unchecked else "no cmp call since the cell began"
            )
            return Report([Row(CASE, "cpu", dtype, "", "", SKIPPED, message=message)])
        return self._evaluate(self._capture(), list(self._pairs))

    def end_of_cell(self) -> Report | None:
        """Print the held-back lines from one evaluation of the cell's pairs, forget them, return the report."""
        if not self._calls:
            return None
        report = self.report()
        rows = {row.variable: row for row in report.rows if row.variable}
        for key, (label, _, text) in self._calls.items():
            print(text or line(label, rows[key], rows[key].caused_by))
        self.reset()
        return report

    def reset(self) -> None:
        """Forget the pairs: the next ``cmp`` starts a new report."""
        self._pairs.clear()
        self._calls.clear()
        self._statuses.clear()

    def _key(self, label: str, tensor: Any) -> str:
        """``label``, or ``label #2``... when the cell already compared another tensor under it (the
        lecture's ``cmp(str(tuple(p.shape)), g, p)`` labels bngain and bnbias alike); a same tensor replaces."""
        key, count = label, 1
        while key in self._calls and self._calls[key][1] is not tensor:
            count += 1
            key = f"{label} #{count}"
        return key

    def _line_now(self, key: str, label: str) -> str:
        """The line of one call checked on its own, with the cause among the pairs so far."""
        captured = self._capture()
        row = self._evaluate(captured, [key])[key]
        self._statuses[key] = row.status
        wrong = {n for n, status in self._statuses.items() if status in WRONG_VALUE}
        cause = root_causes(wrong, captured.variables).get(key, "") if key in wrong else ""
        return line(label, row, cause)

    def _evaluate(self, captured: Capture, names: list[str]) -> Report:
        values = {f"d{name}": manual for name, (manual, _) in self._pairs.items()}
        return evaluate(captured, values, case=CASE, tolerance=state.TOLERANCE, variables=names)

    def _capture(self) -> Capture:
        tensors = {name: state.SESSION.in_graph(tensor) for name, (_, tensor) in self._pairs.items()}
        running = shell()
        namespace = running.user_ns if running is not None else {}
        cells = namespace.get("In", []) if running is not None else []
        lines = {**sources.from_cells(cells, tensors), **sources.from_capture(state.SESSION.capture, tensors)}
        return capture_of(tensors, namespace, lines)

    def _hook(self) -> bool:
        """In IPython, check at the end of each cell that called cmp, and start afresh in the next."""
        running = shell()
        if running is None:
            return False
        if self._hooked is not running:
            running.events.register("pre_run_cell", self._cell_starts)
            running.events.register("post_run_cell", self._cell_ends)
            self._hooked = running
        return True

    def _cell_starts(self, *_: Any) -> None:
        self.reset()

    def _cell_ends(self, *_: Any) -> None:
        report = self.end_of_cell()
        if report is not None:
            show(report)


def _grad(tensor: Any) -> torch.Tensor | None:
    """``tensor.grad``, without torch's warning for a non-leaf tensor that does not retain it."""
    if not isinstance(tensor, torch.Tensor) or not (tensor.is_leaf or tensor.retains_grad):
        return None
    return tensor.grad


cmp = Cmp()
"""The drop-in for the lecture's ``cmp``: ``from gradcheck_kit.notebook import cmp``."""
