"""``ast.parse`` for the grader's worker threads, one parse at a time.

CPython 3.11's parser keeps its recursion-depth bookkeeping per interpreter, not per
thread: two threads parsing at once can fail with ``SystemError: AST constructor
recursion depth mismatch`` (python/cpython#106905), which turned a correct submission
into a ``grader-error`` row under ``--jobs 2``. A parse costs well under a millisecond
next to a sandbox run, so holding a lock around it costs nothing measurable.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, never concurrently with another call of this function."""
    with _LOCK:
        return ast.parse(source, filename)
