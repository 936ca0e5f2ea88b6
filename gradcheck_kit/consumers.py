"""A variable's gradient through one consumer at a time, and the index a consumer gathers rows with.

A consumer's contribution is computed by re-running the consumer's own forward line
on detached inputs, with only the variable requiring grad, and taking autograd.grad
of it with the consumer's autograd gradient as ``grad_outputs``. Re-running the line
(a few tensor ops) isolates the direct path: on the captured graph, autograd.grad of
``bndiff = hprebn - bnmeani`` w.r.t. ``hprebn`` would also count the path through
``bnmeani``. Nothing needs to keep the forward graph alive.
"""

from __future__ import annotations

import ast
import io
import tokenize
from functools import lru_cache
from types import CodeType
from typing import Any

import torch

from .capture import Capture, Variable
from .parsing import parse


def contribution(variable: Variable, consumer: Variable, captured: Capture) -> torch.Tensor | None:
    """d loss / d ``variable`` through ``consumer``'s line alone, or ``None`` when the line cannot be re-run."""
    parsed = _parse(consumer.source, consumer.name)
    if parsed is None or consumer.grad is None:
        return None
    expression, code = parsed
    scope = _scope(expression, captured.namespace)
    leaf = variable.value.detach().requires_grad_(True)
    scope[variable.name] = leaf
    try:
        output = _rerun(code, _globals(captured), scope, captured.device)
    except Exception:  # noqa: BLE001 - a line that does not re-run alone gives no contribution
        return None
    if not (isinstance(output, torch.Tensor) and output.requires_grad and output.shape == consumer.grad.shape):
        return None
    (grad,) = torch.autograd.grad(output, leaf, consumer.grad, allow_unused=True)
    return torch.zeros_like(variable.value) if grad is None else grad


def _rerun(code: CodeType, globals_: dict[str, Any], scope: dict[str, Any], device: torch.device) -> Any:
    """The line's value, the caller's random state left as it was: a failing check's hints re-ran a dropout line and
    advanced it, so a script's later draws depended on whether its check failed. (A re-run mask that differs from
    the forward's is caught by the hints, which use a contribution only when all of them sum to autograd's.)"""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        return eval(code, globals_, scope)  # noqa: S307 - the user's own forward line


def gather_index(variable: Variable, consumer: Variable, captured: Capture) -> tuple[str, torch.Tensor] | None:
    """``(name, index)`` when ``consumer``'s line is ``consumer = variable[index]`` with an integer tensor index."""
    parsed = _parse(consumer.source, consumer.name)
    if parsed is None:
        return None
    body = parsed[0].body
    if not (
        isinstance(body, ast.Subscript)
        and isinstance(body.value, ast.Name)
        and body.value.id == variable.name
        and isinstance(body.slice, ast.Name)
    ):
        return None
    index = captured.namespace.get(body.slice.id)
    if isinstance(index, torch.Tensor) and not index.is_floating_point() and not index.is_complex():
        return body.slice.id, index
    return None


def code_of(source: str) -> str:
    """A forward line without its trailing comment, for quoting in a hint."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source.strip()
    comment = next((t.start[1] for t in tokens if t.type == tokenize.COMMENT), len(source))
    return source[:comment].strip()


@lru_cache(maxsize=256)
def _parse(source: str, target: str) -> tuple[ast.Expression, CodeType] | None:
    """The right-hand side of ``target = ...``, as a tree and compiled; ``None`` for any other line."""
    try:
        tree = parse(source)
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign):
        return None
    statement = tree.body[0]
    if len(statement.targets) != 1 or not (
        isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == target
    ):
        return None
    expression = ast.fix_missing_locations(ast.Expression(statement.value))
    return expression, compile(expression, f"<line of {target}>", "eval")


def _scope(expression: ast.Expression, namespace: dict[str, Any]) -> dict[str, Any]:
    """The names the line reads, tensors detached so the re-run graph starts at the line."""
    names = {node.id for node in ast.walk(expression) if isinstance(node, ast.Name)}
    return {
        name: namespace[name].detach() if isinstance(namespace[name], torch.Tensor) else namespace[name]
        for name in names
        if name in namespace
    }


def _globals(captured: Capture) -> dict[str, Any]:
    forward = captured.graph.forward
    return forward.__globals__ if callable(forward) and hasattr(forward, "__globals__") else {"torch": torch}
