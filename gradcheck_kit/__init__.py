"""gradcheck-kit: check hand-written gradients against PyTorch autograd.

Register a forward graph and its hand-written gradients; get back, for every named
intermediate, how the two compare, which one is wrong first, and why.
"""

from .capture import Capture, GraphError, Variable, capture
from .check import check, evaluate, run_case
from .compare import FAILING, STATUSES, Comparison, compare, compare_all
from .grading.assignment import Assignment
from .graph import Case, Graph, graph, load_cases, register, registered
from .manual import NotebookCell, run_manual
from .report import ERROR, SKIPPED, Report, Row, write
from .tolerance import PRESETS, Tolerance

__all__ = [
    "Assignment",
    "ERROR",
    "FAILING",
    "SKIPPED",
    "STATUSES",
    "PRESETS",
    "Capture",
    "Case",
    "Comparison",
    "Graph",
    "GraphError",
    "NotebookCell",
    "Report",
    "Row",
    "Tolerance",
    "Variable",
    "capture",
    "check",
    "compare",
    "compare_all",
    "evaluate",
    "graph",
    "load_cases",
    "register",
    "registered",
    "run_case",
    "run_manual",
    "write",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext gradcheck_kit``: the ``%%forward`` and ``%%backward`` cell magics (IPython imported only here)."""
    from .notebook.magics import register as register_magics

    register_magics(ipython)
