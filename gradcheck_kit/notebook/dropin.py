"""``cmp``: the lecture's own comparison helper, checking through the library instead.

``cmp('logprobs', dlogprobs, logprobs)`` prints the lecture's line (exact, approximate,
maxdiff) and what that line cannot see: a wrong shape that broadcasts, how many
elements are off, the gradient it follows from or the likely mistake. The calls of
one cell form one check: at the end of the cell (in IPython) or on ``cmp.report()``
the whole table, in backprop order, with the root cause marked.
"""

from __future__ import annotations

from typing import Any

import torch

from ..capture import Capture
from ..check import evaluate
from ..compare import WRONG_VALUE
from ..diagnose import root_causes
from ..report import Report
from . import sources, state
from .show import line, show, unchecked
from .tensors import capture_of

CASE = "cmp"


class Cmp:
    """``cmp(name, manual, tensor)`` against ``tensor.grad``; the calls since the last cell form one report."""

    def __init__(self) -> None:
        self._pairs: dict[str, tuple[Any, torch.Tensor]] = {}
        self._statuses: dict[str, str] = {}
        self._hooked: Any = None

    def __call__(self, name: str, manual: Any, tensor: Any) -> None:
        """Check ``manual`` against ``tensor.grad`` and print one line."""
        self._hook()
        if not isinstance(tensor, torch.Tensor) or tensor.grad is None:
            print(unchecked(name, tensor))
            return
        self._pairs.pop(name, None)
        self._pairs[name] = (manual, tensor)
        captured = self._capture()
        row = self._evaluate(captured, [name])[name]
        self._statuses[name] = row.status
        print(line(name, row, self._cause(name, captured)))

    def report(self) -> Report:
        """Every pair checked since the cell began (or since :meth:`reset`), in backprop order."""
        return self._evaluate(self._capture(), list(self._pairs))

    def reset(self) -> None:
        """Forget the pairs: the next ``cmp`` starts a new report."""
        self._pairs.clear()
        self._statuses.clear()

    def _evaluate(self, captured: Capture, names: list[str]) -> Report:
        values = {f"d{name}": manual for name, (manual, _) in self._pairs.items()}
        return evaluate(captured, values, case=CASE, tolerance=state.TOLERANCE, variables=names)

    def _capture(self) -> Capture:
        tensors = {name: state.SESSION.in_graph(tensor) for name, (_, tensor) in self._pairs.items()}
        shell = _shell()
        namespace = shell.user_ns if shell is not None else {}
        cells = namespace.get("In", []) if shell is not None else []
        lines = {**sources.from_cells(cells, tensors), **sources.from_capture(state.SESSION.capture, tensors)}
        return capture_of(tensors, namespace, lines)

    def _cause(self, name: str, captured: Capture) -> str:
        """The root cause upstream of ``name`` among the pairs so far, or "" (none, or ``name`` is one)."""
        wrong = {n for n, status in self._statuses.items() if status in WRONG_VALUE}
        if name not in wrong:
            return ""
        return root_causes(wrong, captured.variables).get(name, "")

    def _hook(self) -> None:
        """In IPython, report at the end of each cell that called cmp, and start afresh in the next."""
        shell = _shell()
        if shell is None or self._hooked is shell:
            return
        shell.events.register("pre_run_cell", self._cell_starts)
        shell.events.register("post_run_cell", self._cell_ends)
        self._hooked = shell

    def _cell_starts(self, *_: Any) -> None:
        self.reset()

    def _cell_ends(self, *_: Any) -> None:
        if self._pairs:
            show(self.report())
        self.reset()


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


cmp = Cmp()
"""The drop-in for the lecture's ``cmp``: ``from gradcheck_kit.notebook import cmp``."""
