"""``ast.parse`` for every parse gradcheck-kit makes, one at a time in the process.

CPython 3.11's parser keeps its recursion-depth bookkeeping per interpreter, not per
thread: two threads parsing at once can fail with ``SystemError: AST constructor
recursion depth mismatch`` or a false ``RecursionError`` (python/cpython#106905), which turned a
correct submission into a ``grader-error`` row under ``--jobs 2``, also when the other parse was the check
engine's own (capture's forward, the hints' consumers) beside a submission nesting 100,000 deep. A parse
costs well under a millisecond next to a sandbox run, so holding a lock around it costs nothing measurable.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, never concurrently with another call of this function. A source nesting
    past what the parser can hold (``x = 1`` then 100,000 ``+1``) is the submission's SyntaxError, not the
    grader's RecursionError or MemoryError."""
    with _LOCK:
        try:
            return ast.parse(source, filename)
        except (RecursionError, MemoryError) as error:
            raise SyntaxError(f"the source nests too deeply to be parsed ({type(error).__name__})") from None
