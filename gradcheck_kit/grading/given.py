"""The gradients a part's cells may read without computing them: those flowing into the part from the next layer.

makemore's Exercise 3 computes ``dhprebn`` from ``dhpreact``, which the notebook holds from Exercise 1. The grader
gives such a gradient as its reference, read before the cell binds it, so that a mistake of Exercise 1 does not cost
Exercise 3. By default it gives the gradients of the variables that every path from the part's graded variables to
the loss goes through, from the nearest one that takes a parameter (the next layer's output: ``hpreact``, which
takes ``bngain``) on towards the loss, and below it each such variable whose one use is the one above it
(``bnraw``, used only by ``hpreact``: many students write Exercise 3's formula from ``dbnraw``). Never one
computed from a graded gradient (``dh`` for ``dlogits``: ``dlogits = dh @ pinv(W2.T)`` would copy the answer out
of it), nor a step inside the part's block (``dbndiff`` for ``dhprebn``: ``dhprebn = dbndiff - dbndiff.mean(0)``
is the batchnorm backward done for the student); Exercise 2's ``dlogits``, with no layer between it and the loss,
is given nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .assignment import Assignment


def given_names(
    part: Assignment, consumers: Mapping[str, Collection[str]], gradable: Collection[str]
) -> dict[str, str]:
    """``d<name>`` as the part's cells write it -> variable, for each gradient the cells may read without computing
    it: the part's ``given``, or by default :func:`given_variables`; only among ``gradable`` (the gradients some
    part grades, whose references the grader holds) and never one the part grades itself."""
    chosen = given_variables(consumers, part.points) if part.given is None else part.given
    return {part.name_rule.format(name=name): name for name in chosen if name in gradable and name not in part.points}


def given_variables(consumers: Mapping[str, Collection[str]], graded: Collection[str]) -> list[str]:
    """The variables that every path from each of ``graded`` towards the loss goes through, from the nearest one
    computed from a parameter (a variable computed from none) on, and those below it each used only by the one
    above it, in ``consumers``' order (backprop order: the loss's side first); ``consumers`` maps each forward
    variable to those computed from it (the last one has none)."""
    starts = [name for name in graded if name in consumers]
    if not starts:
        return []
    passed = [
        name
        for name in consumers
        if name not in graded and not any(_escapes(consumers, start, name) for start in starts)
    ]
    computed = {after for following in consumers.values() for after in following}
    layers = {after for name in consumers if name not in computed for after in consumers[name]}
    ends = [index for index, name in enumerate(passed) if name in layers]
    if not ends:
        return []
    end = ends[-1] + 1
    while end < len(passed) and list(consumers[passed[end]]) == [passed[end - 1]]:
        end += 1  # a step whose one use is the last given (bnraw, used only by hpreact): its gradient is one product
    return passed[:end]


def _escapes(consumers: Mapping[str, Collection[str]], start: str, blocked: str) -> bool:
    """Whether some path from ``start`` reaches a variable nothing is computed from without passing ``blocked``."""
    seen, stack = {start}, [start]
    while stack:
        name = stack.pop()
        if not consumers.get(name):
            return True
        for after in consumers[name]:
            if after != blocked and after not in seen:
                seen.add(after)
                stack.append(after)
    return False
