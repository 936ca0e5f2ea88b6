"""IPython magic and shell lines as Python, one line at a time, keeping every line's number.

The backward runner (:func:`gradcheck_kit.manual.strip_magics`) and the grader
(:func:`gradcheck_kit.grading.cells.blank_magics`) read notebook code through this one function, so a line
such as ``dh = %time expr`` means the same to both (the grader's own copy left it a SyntaxError).
"""

from __future__ import annotations

import re

MAGIC = re.compile(r"^(?P<indent>\s*)(?:(?P<target>[A-Za-z_]\w*)\s*=\s*)?[%!]")
_TIME = re.compile(r"%time(?:\s+--no-raise-error)?(?:\s+(?P<statement>.*?))?\s*")
"""The ``%time`` line magic, which runs its statement where it stands (``%timeit`` runs its own in a
function of its own: what it assigns is not bound)."""


def without_magic(line: str) -> str:
    """``line`` as Python: a magic or shell line blanked (``pass`` at its indent; ``x = !ls`` binds None),
    ``%time``'s statement kept (``dh = %time expr`` is ``dh = expr``); any other line as it is."""
    match = MAGIC.match(line)
    if match is None:
        return line
    indent, target = match["indent"], match["target"]
    timed = _TIME.fullmatch(line, match.end() - 1)
    statement = timed and timed["statement"]
    if statement and not target:
        return f"{indent}{statement}"
    if statement and _is_expression(statement):
        return f"{indent}{target} = {statement}"
    if statement:
        return f"{indent}{statement}; {target} = None"
    return f"{indent}{target} = None" if target else f"{indent}pass"


def _is_expression(code: str) -> bool:
    """``code`` has a value (``dh = %time expr``) rather than being a statement (``x = %time y = 1``)."""
    try:
        compile(code, "<magic>", "eval")
    except SyntaxError:
        return False
    return True
