"""``%%forward`` and ``%%backward``: the check of a notebook that has no ``retain_grad`` loop.

``%%forward`` runs its cell through the library's capture (every named tensor, in
forward order, autograd's gradient of each; no ``retain_grad``, no ``loss.backward()``)
and leaves the cell's names in the notebook as a plain run would, parameters with
their ``.grad``. ``%%backward`` runs its cell on copies of the forward values, keeps
what it assigns, and checks every ``d<name>`` it assigned (or the names on the magic's
line) against that capture, shown as the report's HTML view.
"""

from __future__ import annotations

import ast
import traceback
from typing import Any

import torch
from IPython.core.magic import Magics, cell_magic, magics_class

from ..capture import Capture, capture
from ..check import evaluate
from ..graph import Graph
from ..manual import gradient_pattern, run_manual
from ..parsing import parse
from ..report import SKIPPED, Report, Row
from . import state
from .reads import reads
from .show import show

RULE = "d{name}"
CASE = "%%backward"


@magics_class
class GradcheckMagics(Magics):
    """The cell magics that ``%load_ext gradcheck_kit`` registers."""

    @cell_magic
    def forward(self, line: str, cell: str) -> None:
        """``%%forward [LOSS]``: capture the cell's forward (its loss is named ``loss`` unless given)."""
        loss = line.strip() or "loss"
        code, skipped = _without_backward(_numbered_as_in_the_notebook(self.shell.transform_cell(cell)))
        if skipped:
            where = ("line " if len(skipped) == 1 else "lines ") + ", ".join(map(str, skipped))
            print(f"%%forward: the cell's backward ({where}) is left out: %%forward runs it and keeps every gradient")
        names = self.shell.user_ns
        inputs = {name: names[name] for name in reads(code) if name in names}
        graph = Graph("notebook", code, lambda: inputs, loss=loss)
        try:
            captured = capture(graph, _device(inputs), _dtype(inputs))
        except Exception as error:  # noqa: BLE001 - the student's forward failing is a message, not a crash
            state.SESSION.capture, state.SESSION.parameters = None, []
            print(f"%%forward: nothing captured: {_describe(error)}")
            return
        state.SESSION.capture = captured
        state.SESSION.parameters = _write_back(captured, inputs, _bound(code), names)
        print(_captured_summary(captured))

    @cell_magic
    def backward(self, line: str, cell: str) -> None:
        """``%%backward [NAME ...]``: run the cell, then check its ``d<name>`` gradients (or NAME's)."""
        captured = state.SESSION.capture
        if captured is None:
            print("%%backward: nothing to check against: run the forward cell under %%forward first")
            self.shell.ex(self.shell.transform_cell(cell))  # as a plain cell: the notebook goes on as without it
            return
        wanted = line.split()
        unknown = [name for name in wanted if name not in captured.variables]
        if unknown:
            print(f"%%backward: {unknown} are not variables of the forward; it has {list(captured.variables)}")
            return
        code = _numbered_as_in_the_notebook(self.shell.transform_cell(cell))
        unparsed = _syntax_error(code)
        if unparsed:
            print(f"%%backward: the cell does not parse, so nothing in it ran: {unparsed}")
            return
        result = run_manual(code, _backward_inputs(code, captured, self.shell.user_ns))
        self.shell.user_ns.update(result.values)
        if result.error:
            print(f"%%backward: the cell stopped: {result.error}")
        show(_check(captured, result.values, wanted or _meant(code, captured, result.error), result.error))


def register(ipython: Any) -> None:
    """Register the magics with ``ipython`` (what ``%load_ext gradcheck_kit`` calls)."""
    ipython.register_magics(GradcheckMagics)


def _check(captured: Capture, values: dict[str, Any], wanted: list[str], error: str | None) -> Report:
    """The report of the gradients the cell assigned (or of ``wanted``); a skipped row when there are none."""
    pattern = gradient_pattern(RULE)
    assigned = [m["name"] for m in map(pattern.match, values) if m]
    variables = wanted or [name for name in captured.variables if name in assigned]
    report = evaluate(captured, values, case=CASE, tolerance=state.TOLERANCE, variables=variables, error=error)
    if variables:
        return report
    extras = "".join(f"; {row.message}" for row in report.rows)
    message = f"the cell assigned no d<name> gradient of a forward variable: nothing was checked{extras}"
    return Report([Row(CASE, str(captured.device), _dtype_name(captured.dtype), "", "", SKIPPED, message=message)])


def _meant(code: str, captured: Capture, error: str | None) -> list[str]:
    """The forward variables whose gradients a cell that stopped (``error``) binds somewhere in its code: those
    after the line that raised are missing because of it, and their rows say so. Empty for a cell that ran to its
    end, which is checked on the gradients it assigned."""
    if not error:
        return []
    pattern = gradient_pattern(RULE)
    named = {m["name"] for m in map(pattern.match, _bound(code)) if m}
    return [name for name in captured.variables if name in named]


def _backward_inputs(code: str, captured: Capture, names: dict[str, Any]) -> dict[str, Any]:
    """What the cell reads before binding it: the captured forward's values first, then the notebook's;
    never its ``cmp`` (the report does the comparing, so the lecture's ``cmp`` lines may stay in the cell)."""
    read = [name for name in reads(code) if name != "cmp"]
    return {
        name: captured.namespace[name] if name in captured.namespace else names[name]
        for name in read
        if name in captured.namespace or name in names
    }


def _write_back(
    captured: Capture, inputs: dict[str, Any], bound: set[str], names: dict[str, Any]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Leave the notebook as the lecture's forward + ``loss.backward()`` would: the cell's names bound,
    each parameter (a leaf that requires grad) with its ``.grad``. Returns (parameter, copy) pairs."""
    for name in bound & captured.namespace.keys():
        names[name] = captured.namespace[name]
    pairs = []
    for name, value in inputs.items():
        copy = captured.namespace.get(name)
        if isinstance(value, torch.Tensor) and value.is_leaf and value.requires_grad and copy is not None:
            value.grad = None if copy.grad is None else copy.grad.to(value.dtype)
            pairs.append((value, copy))
    return pairs


def _captured_summary(captured: Capture) -> str:
    count, loss = len(captured.variables), captured.loss.item()
    text = f"%%forward: {count} variables captured, loss = {loss:.4f}; backprop order: {', '.join(captured.variables)}"
    problems = [v.problem for v in captured.variables.values() if v.problem]
    return "\n".join([text, *(f"  cannot check: {p}" for p in problems)])


def _numbered_as_in_the_notebook(code: str) -> str:
    """The cell's code starting on line 2, below the magic's line, so reported lines match the notebook's."""
    return "\n" + code


def _without_backward(code: str) -> tuple[str, list[int]]:
    """``code`` with the lecture's backward plumbing made ``pass`` in place, and the lines where it began: its
    top-level ``loss.backward()``, and the loops that only clear ``p.grad = None`` or call ``t.retain_grad()``
    before it. Under ``%%forward`` the capture runs the backward and keeps every gradient; a forward that already
    ran it captures nothing, and the loops' ``p`` and ``t`` would be variables of their own."""
    try:
        body = parse(code).body
    except SyntaxError:
        return code, []
    lines = code.split("\n")
    skipped = []
    for statement in body:
        if _plumbing(statement):
            first, last = statement.lineno, statement.end_lineno or statement.lineno
            lines[first - 1 : last] = ["pass"] + [""] * (last - first)
            skipped.append(first)
    return "\n".join(lines), skipped


def _plumbing(statement: ast.stmt) -> bool:
    """A call of ``.backward()`` or ``.retain_grad()``, ``x.grad = None``, or a loop of nothing else."""
    if isinstance(statement, ast.For):
        return not statement.orelse and all(_plumbing(inner) for inner in statement.body)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        function = statement.value.func
        return isinstance(function, ast.Attribute) and function.attr in ("backward", "retain_grad")
    if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
        targets = statement.targets
        return statement.value.value is None and all(isinstance(t, ast.Attribute) and t.attr == "grad" for t in targets)
    return False


def _syntax_error(code: str) -> str:
    """``IndentationError: unexpected indent (line 3)`` when ``code`` does not parse, else "". Jupyter runs nothing of
    such a cell; the check said 'every gradient had been assigned and is judged as it stood' of a cell that
    assigned none."""
    try:
        parse(code)
    except SyntaxError as error:  # one nesting too deep has no line, said as such (it read "line None")
        return f"{type(error).__name__}: {error.msg}" + (f" (line {error.lineno})" if error.lineno else "")
    except ValueError as error:  # a NUL byte pasted into the cell, on Python 3.10
        return f"{type(error).__name__}: {error}"
    return ""


def _bound(code: str) -> set[str]:
    return {node.id for node in _names(code) if isinstance(node.ctx, ast.Store)}


def _names(code: str) -> list[ast.Name]:
    try:
        tree = parse(code)
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.Name)]


def _params(inputs: dict[str, Any]) -> list[torch.Tensor]:
    return [v for v in inputs.values() if isinstance(v, torch.Tensor) and v.requires_grad and v.is_floating_point()]


def _device(inputs: dict[str, Any]) -> torch.device:
    params = _params(inputs)
    return params[0].device if params else torch.device("cpu")


def _dtype(inputs: dict[str, Any]) -> torch.dtype:
    """The parameters' common dtype (float32 when there are none): capture casts every float input to it."""
    dtype = torch.float32
    for i, param in enumerate(_params(inputs)):
        dtype = param.dtype if i == 0 else torch.promote_types(dtype, param.dtype)
    return dtype


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _describe(error: BaseException) -> str:
    """``ExcType: message`` and the cell line that raised it, when it was the cell's own code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<graph")]
    text = f"{type(error).__name__}: {error}"
    return f"{text} (line {frames[-1].lineno} of the cell)" if frames else text
