"""IPython magic and shell lines as Python, one line at a time, keeping every line's number.

The backward runner (:func:`gradcheck_kit.manual.strip_magics`) and the grader
(:func:`gradcheck_kit.grading.cells.blank_magics`) read notebook code through this one function, so a line
such as ``dh = %time expr`` means the same to both (the grader's own copy left it a SyntaxError), and so does
a cell whose magic never runs its body in the notebook (``%%writefile``).
"""

from __future__ import annotations

import re

NEWLINE = re.compile(r"\r\n|\r|\n")
"""Python's own line ends: ``str.splitlines`` also splits at form feeds and U+2028, which Python does not."""
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


_CELL_MAGIC = re.compile(r"\s*%%(\S+)")
_TO_A_FILE = "Jupyter writes its body to a file and does not run it"
_PROGRAMS = ("!", "bash", "sh", "system", "sx", "script", "perl", "ruby", "python", "python2", "python3", "pypy")
_DISPLAYS = ("html", "HTML", "javascript", "js", "latex", "markdown", "svg", "SVG")
NOT_RUN = {
    "writefile": _TO_A_FILE,
    "file": _TO_A_FILE,
    "timeit": "%%timeit runs its body inside a function of its own, so nothing it assigns is left in the notebook",
    **dict.fromkeys(_PROGRAMS, "its body runs as another program, not in the notebook"),
    **dict.fromkeys(_DISPLAYS, "Jupyter shows its body and does not run it"),
}
"""IPython's cell magics that do not run their body in the notebook, and why: such a cell is not graded."""


def unrun_magic(source: str) -> str:
    """``%%writefile`` (and the like, :data:`NOT_RUN`) when the code cell's first line is a cell magic that does not
    run its body in the notebook, else "": Jupyter runs such a cell's body elsewhere, or not at all."""
    first = next((line for line in NEWLINE.split(source) if line.strip()), "")
    found = _CELL_MAGIC.match(first)
    return f"%%{found[1]}" if found and found[1] in NOT_RUN else ""
