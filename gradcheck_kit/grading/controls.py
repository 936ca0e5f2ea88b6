"""Control characters written as escapes, wherever a text from a student (a message, a file name) is shown.

A NUL in a gradebook cell made it unreadable to Python 3.10's csv (``--resume`` and ``merge`` then failed for the
whole class), and an ANSI escape in a file name or a message ran in the terminal of whoever printed it.
"""

from __future__ import annotations

_CONTROLS = {chr(code): f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\n\t"}
"""C0 and C1 control characters and DEL, but newline and tab, as their ``\\xNN`` escapes."""


def escaped(text: str) -> str:
    """``text`` with its control characters (but newline and tab) written as ``\\xNN``."""
    if text.isprintable():
        return text
    return "".join(_CONTROLS.get(character, character) for character in text)
