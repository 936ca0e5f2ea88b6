"""Flag for staff review a submission whose source reaches past the exercise: torch's C internals, the autograd
engine, ctypes, dynamic imports or attribute lookups on torch internals.

Whatever the child closes can be reopened from inside its own process, so the closed
doors (see :func:`.runtime.forbid_autograd`) are backed by a look at the source. A flag
changes no score: it is a column in the gradebook with the reasons, for a person to read.
"""

from __future__ import annotations

import ast
import re
import unicodedata

from ..parsing import parse

_ATTRIBUTES = {
    "_C": "torch._C (torch's C internals)",
    "_execution_engine": "the autograd engine",
    "_ImperativeEngine": "the autograd engine",
    "run_backward": "the autograd engine (run_backward)",
    "_functorch": "functorch internals",
    "forward_ad": "forward-mode autograd",
    "_make_dual": "forward-mode autograd",
    "_set_grad_enabled": "switching grad mode back on",
    "enable_grad": "switching grad mode back on",
    "set_grad_enabled": "switching grad mode back on",
    "__subclasses__": "walking classes",
    "__globals__": "walking function globals",
    "f_back": "walking frames",
    "_getframe": "walking frames",
    "get_objects": "walking the garbage collector",
    "get_referrers": "walking the garbage collector",
    "grad_fn": "autograd's graph (grad_fn)",
    "next_functions": "autograd's graph (grad_fn)",
    "__closure__": "walking closures",
    "cell_contents": "walking closures",
    "jit": "TorchScript (torch.jit runs its own autograd calls)",
    "CompilationUnit": "TorchScript (torch.jit runs its own autograd calls)",
    "ops": "torch.ops (operators called by name, grad mode among them)",
    "_builtins": "torch's builtin operator table",
    "preadv": "reading files around the page cache (preadv)",
    "posix_fadvise": "steering the page cache (posix_fadvise)",
    "__dict__": "an object's namespace (__dict__)",
}
_MODULES = {
    "torch.jit": "TorchScript (torch.jit runs its own autograd calls)",
    "ctypes": "ctypes",
    "_ctypes": "ctypes",
    "importlib": "importlib",
    "gc": "the garbage collector",
    "inspect": "inspect",
    "functorch": "functorch",
    "torch._C": "torch._C (torch's C internals)",
    "torch.func": "torch.func transforms",
    "torch._functorch": "functorch internals",
}
_CALLS = {
    "__import__": "__import__",
    "getattr": "getattr",
    "eval": "eval",
    "exec": "exec",
    "compile": "compile",
    "vars": "vars (reading a namespace by name)",
}
_BY_NAME = ("sys", "modules")
"""``sys.modules``: a module taken by a name the source can spell in pieces (``sys.modules["ctyp" + "es"]`` reached
ctypes, which the child has loaded, with no import and no word the review knew)."""
_STRINGS = ("_C", "run_backward", "_execution_engine", "ctypes", "grad_fn", "modules")
_WORDS = (*_ATTRIBUTES, *(module.rsplit(".", 1)[-1] for module in _MODULES), *_CALLS, _BY_NAME[1])
"""An identifier that any reason needs (an attribute, the last part of a module's dotted name, a called name)."""
MAX_REASONS = 5
MAX_REVIEWED = 128 * 1024
"""Most characters of a source reviewed by parsing it (a submission of the lecture's size is a few thousand): the
grader parsed an 8 MB source of ``a=1`` lines, which the sandbox then refused to run, for 38 s and 4.7 GB, under
the lock every parse of the run waits for. A larger source is flagged by the words it holds instead."""
_WHOLE_WORDS = re.compile("|".join(rf"\b{re.escape(word)}\b" for word in sorted(set(_WORDS), key=len, reverse=True)))


def review(source: str) -> str:
    """``""`` for an ordinary submission, else the reasons to look at it, ``; ``-separated (at most five)."""
    if not _may_reach(source):
        return ""
    if len(source) > MAX_REVIEWED:
        return _too_large(source)
    try:
        tree = parse(source)
    except (SyntaxError, ValueError):
        return ""
    found = sorted({(node.lineno, reason) for node in ast.walk(tree) if (reason := _reason(node))})
    return "; ".join(f"line {line}: {reason}" for line, reason in found[:MAX_REASONS])


def _too_large(source: str) -> str:
    """The flag of a source too large to parse for review: the words it holds that a reason needs, or ``""``."""
    text = source if source.isascii() else unicodedata.normalize("NFKC", source)
    words = list(dict.fromkeys(match.group() for match in _WHOLE_WORDS.finditer(text)))
    if not words:
        return ""
    return f"too large to review ({len(source):,} characters); it mentions {', '.join(words[:MAX_REASONS])}"


def _may_reach(source: str) -> bool:
    """Whether ``source`` holds any of :data:`_WORDS`: without one no node can give a reason, so most submissions
    are cleared without a parse. Python reads identifiers NFKC-normalised (``ｒun_backward`` is ``run_backward``),
    so the text is searched normalised the same way."""
    text = source if source.isascii() else unicodedata.normalize("NFKC", source)
    return any(word in text for word in _WORDS)


def _reason(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute) and node.attr in _ATTRIBUTES:
        return f"uses {_ATTRIBUTES[node.attr]}"
    if _sys_modules(node):
        return "looks modules up by name (sys.modules)"
    if isinstance(node, ast.Import):
        found = [_MODULES[alias.name] for alias in node.names if alias.name in _MODULES]
        return f"imports {found[0]}" if found else ""
    if isinstance(node, ast.ImportFrom) and node.module in _MODULES:
        return f"imports {_MODULES[node.module]}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS:
        texts = [arg.value for arg in ast.walk(node) if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        if node.func.id != "getattr" or _mentions_internals(node, texts):
            return f"calls {_CALLS[node.func.id]}"
    return ""


def _sys_modules(node: ast.AST) -> bool:
    """``sys.modules``, or ``modules`` imported from ``sys``."""
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and (node.value.id, node.attr) == _BY_NAME
    return isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "modules" for a in node.names)


def _mentions_internals(node: ast.Call, texts: list[str]) -> bool:
    """``getattr`` on torch, or with a name that is not a plain literal, or naming an internal."""
    target = node.args[0] if node.args else None
    on_torch = isinstance(target, ast.Name) and target.id == "torch"
    name = node.args[1] if len(node.args) > 1 else None
    dynamic = not (isinstance(name, ast.Constant) and isinstance(name.value, str))
    return on_torch or dynamic or any(word in text for text in texts for word in _STRINGS)
