"""What runs inside the sandboxed child: the submission, one top-level statement at a time.

The submission's globals are a :class:`GradientNamespace`. In independent grading,
the first read of a graded ``d<name>`` by a statement that is not building it sends
the student's value to the grader (the commit), and from then on such reads get a
copy of the reference the grader answers with; the name itself stays bound to the
student's own tensor. A gradient no later statement writes is sent as a draft once
assigned, so a run killed later (a timeout) keeps it. Whatever happens, every graded
name still unrecorded is sent at the end, so an error part-way keeps what was
computed before it.
"""

from __future__ import annotations

import ast
import ctypes
import functools
import gc
import os
import sys
import traceback
from collections.abc import Callable, Collection, Mapping
from difflib import get_close_matches as close_matches
from typing import Any

import torch
import torch.nn.functional as F

from .channel import Reader, decode_value, encode_value, write_frame
from .names import materialize
from .statements import LOOKING, Role, roles

AUTOGRAD_MESSAGE = "autograd is not allowed in this exercise: compute each gradient by hand"

EVENTS_FD = 3
"""The child writes commits and its outcome here."""
REPLIES_FD = 4
"""The child reads its job and the reference gradients from here."""

_MISSING = object()
_KEPT_DRAFT = 1 << 20
"""Largest draft payload the child keeps to compare its commit with (a larger one is simply sent again)."""
UNCLAIMED = "unclaimed:"
"""Prefix of a commit that only names a gradient-like name no graded variable claims (a typo)."""
MAX_UNCLAIMED = 50
"""The most such names a run sends, and the grader reads (each costs a "did you mean" search there)."""


class AutogradNotAllowed(RuntimeError):
    """Raised by every autograd entry point when the assignment forbids autograd."""


def single_threaded() -> None:
    """Keep torch and numpy's BLAS on the one thread a child may have (it may start none: ``RLIMIT_NPROC`` is 0). An
    honest notebook's ``torch.set_num_threads(8)`` made the next operator ask OpenMP for threads, and libgomp ended
    the process ("Thread creation failed": graded as crashed); numpy's OpenBLAS, set up for every core in the
    grader, tried to start its threads at a child's first large ``a @ b`` and hung until the time limit. Called
    once in the zygote: torch's thread count stays 1 (asking for more does nothing); OpenBLAS is told 1, which
    starts its thread pool here, so the pool is shut down again (a child's fork would wait for it forever)."""
    torch.set_num_threads(1)
    torch.set_num_threads = lambda count: None
    with open("/proc/self/maps") as maps:
        libraries = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    for library in sorted(libraries):
        _openblas_on_one_thread(ctypes.CDLL(library))


def _openblas_on_one_thread(library: ctypes.CDLL) -> None:
    """Tell one loaded OpenBLAS (its symbols named plainly or as numpy's build names them) to use one thread, and
    shut its pool; nothing where it offers no way to shut the pool."""
    names = [f"{prefix}openblas_set_num_threads{suffix}" for prefix in ("scipy_", "") for suffix in ("64_", "")]
    setter = next((getattr(library, name) for name in names if hasattr(library, name)), None)
    if setter is not None and hasattr(library, "blas_thread_shutdown_"):
        setter(1)
        library.blas_thread_shutdown_()


def _refusing() -> Callable[..., Any]:
    """A function that raises :class:`AutogradNotAllowed`, a new one each time: torch's compiler (which
    ``torch.optim.SGD(...)`` imports) keeps one rule per torch function, and one object standing for several
    broke its table ('Duplicate torch object ... with different rules', an error row for a right Exercise 1)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AutogradNotAllowed(AUTOGRAD_MESSAGE)

    return refuse


def forbid_autograd() -> None:
    """Replace torch's backward, grad and functional transforms with a clear error; ``Tensor.grad`` reads None."""
    refuse = _refusing()

    class RefusingEngine:
        def __getattr__(self, name: str) -> Any:
            return _refusing()

    def clear_only(tensor: torch.Tensor, value: Any) -> None:
        if value is not None:
            refuse()

    torch.Tensor.backward = refuse  # type: ignore[method-assign]
    # Reading .grad gives what a notebook that never called loss.backward() gives (None): a student's own
    # comparison helper reads it just to look. Setting it to None (the lecture's training loop clears it with
    # `p.grad = None`) does nothing; setting a value is refused.
    torch.Tensor.grad = property(lambda tensor: None, clear_only)  # type: ignore[assignment,method-assign]
    torch.autograd.backward = _refusing()
    torch.autograd.grad = _refusing()
    torch.autograd.Variable._execution_engine = RefusingEngine()  # type: ignore[attr-defined]
    torch._C._ImperativeEngine = RefusingEngine  # type: ignore[attr-defined,misc]
    for module, names in (
        (torch.autograd.functional, ("vjp", "jvp", "jacobian", "hessian", "vhp", "hvp")),
        (torch.func, ("grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "linearize", "vmap")),
        (torch.autograd.forward_ad, ("make_dual",)),  # unpack_dual stays: printing a tensor calls it
        (torch, ("_make_dual", "vmap")),
    ):
        for name in names:
            if hasattr(module, name):
                setattr(module, name, _refusing())
    _no_graph_recorded(_grad_mode_off(refuse))


def _no_graph_recorded(only_off: Any) -> None:
    """Take autograd out of this thread's dispatch for good: every operator then runs below it, so no tensor ever
    gets a ``grad_fn`` (or a forward-mode tangent), whatever switched grad mode back on. Python patches cannot
    close the doors that reach C++ directly: ``torch.ops.aten.set_grad_enabled(True)`` (or TorchScript's
    ``torch.set_grad_enabled`` in a ``torch.jit.CompilationUnit``) switched grad mode on, and
    ``torch.ops.aten.grad`` differentiated a recomputed forward for 26/26. Version counters still count in-place
    changes (they live in the ADInplaceOrView key, below autograd). What could let autograd back in (the thread's
    dispatch-key switches, functorch's grad and jvp levels) refuses, as do the aten operators that switch grad
    mode on (``only_off``) or run the engine, so a submission that tries them is told why it failed."""
    torch._C._dispatch_tls_set_dispatch_key_excluded(torch._C.DispatchKey.AutogradFunctionality, True)
    closed = [
        (
            torch._C,
            ("_dispatch_tls_set_dispatch_key_excluded", "_ForceDispatchKeyGuard", "_SetExcludeDispatchKeyGuard"),
        ),
        (torch._C._functorch, ("_grad_increment_nesting", "_jvp_increment_nesting", "push_dynamic_layer_stack")),
    ]
    originals = {getattr(module, name): _refusing() for module, names in closed for name in names}
    for module, names in closed:
        for name in names:
            setattr(module, name, originals[getattr(module, name)])
    _replace_everywhere(originals)
    for name, new in (("set_grad_enabled", only_off), ("grad", _refusing()), ("backward", _refusing())):
        setattr(torch.ops.aten, name, new)


def _grad_mode_off(refuse: Any) -> Any:
    """Turn grad mode off for good: a recomputed forward records no graph, so no engine or ``grad_fn`` can
    differentiate it. Turning it off again (``torch.no_grad()``) still works; turning it on is refused. The switch
    that turns it on is kept nowhere Python can reach it: not in the refusing function (a closure's
    ``cell_contents`` gave it back) nor in torch.fx's tables of side-effectful functions (another copy), so a
    submission cannot switch grad mode back on and call autograd's backward nodes one by one."""
    switch = torch._C._set_grad_enabled
    switch(False)

    def only_off(mode: bool) -> None:
        if mode:
            refuse()

    torch._C._set_grad_enabled = only_off  # type: ignore[attr-defined]
    _replace_everywhere({switch: only_off})
    return only_off


def _replace_everywhere(replacements: Mapping[Any, Any]) -> None:
    """Put each new value in place of its old one (the keys) in every dict, list and set that holds it: one walk
    of the heap for all of them."""
    for holder in gc.get_referrers(*replacements):
        if isinstance(holder, dict):
            holder.update({key: replacements[value] for key, value in holder.items() if _among(value, replacements)})
        elif isinstance(holder, list):
            holder[:] = [replacements[value] if _among(value, replacements) else value for value in holder]
        elif isinstance(holder, set):
            for old in [value for value in holder if _among(value, replacements)]:
                holder.discard(old)
                holder.add(replacements[old])


def _among(value: Any, replacements: Mapping[Any, Any]) -> bool:
    """Whether ``value`` is itself one of the replaced objects (by identity: a tensor's ``==`` is no answer)."""
    return any(value is old for old in replacements)


class Link:
    """The child's end of the channel to the grader: events out, and ``replies`` (where the job came from) in."""

    def __init__(self, max_payload: int, replies: Reader) -> None:
        self.max_payload = max_payload
        self._replies = replies
        self._drafts: dict[str, tuple[dict[str, Any], bytes]] = {}
        """Variable -> its last draft as sent (up to :data:`_KEPT_DRAFT` bytes), until it is committed."""

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        write_frame(EVENTS_FD, header, payload)

    def commit(self, variable: str, value: Any, reply: bool) -> Any:
        """Hand in the student's value for ``variable``; with ``reply``, return the grader's reference. A value
        byte for byte its last draft is sent as ``drafted``, without its payload: the grader has it already."""
        fields, payload = ({"kind": "missing"}, b"") if value is _MISSING else _encoded(value)
        if self._drafts.pop(variable, None) == (fields, payload):
            fields, payload = {"kind": "drafted"}, b""
        self.send({"op": "commit", "variable": variable, "reply": reply, **fields}, payload)
        if not reply:
            return None
        frame = self._replies.frame(self.max_payload)
        if frame is None or frame[0].get("op") != "reference":
            raise ConnectionError("the grader did not answer a commit")
        return None if frame[0].get("kind") == "none" else decode_value(*frame)

    def draft(self, variable: str, value: Any) -> None:
        """The student's value for ``variable`` as assigned, not yet committed: kept if the run never ends."""
        fields, payload = _encoded(value)
        self.send({"op": "draft", "variable": variable, **fields}, payload)
        if len(payload) <= _KEPT_DRAFT:
            self._drafts[variable] = (fields, payload)
        else:
            self._drafts.pop(variable, None)

    def alter(self, variable: str, value: Any, line: int) -> None:
        """A value already handed in for ``variable`` was changed in place at ``line``: send it as it ended up."""
        fields, payload = _encoded(value)
        self.send({"op": "altered", "variable": variable, "line": line, **fields}, payload)

    def note(self, message: str) -> None:
        """Something the grader should tell the student that does not stop the run."""
        self.send({"op": "note", "message": message})


def _encoded(value: Any) -> tuple[dict[str, Any], bytes]:
    """:func:`.channel.encode_value`'s fields and payload, or only the value's type (``unsupported_tensor`` for a
    plain tensor) when it cannot be encoded: a nested tensor, or a subclass whose ``__torch_function__`` refuses
    ``detach``, ended the run ("the sandbox failed before the submission ran") and lost every later statement.
    Running out of memory while copying it is raised, as the submission's own failure."""
    try:
        return encode_value(value)
    except Exception as error:
        if _out_of_memory(error):
            raise
        kind = "unsupported_tensor" if type(value) is torch.Tensor else type(value).__name__[:100]
        return {"kind": "other", "type": kind}, b""


class GradientNamespace(dict):
    """The submission's globals; a *use* of a graded gradient is intercepted in independent grading.

    The first use records the student's value; each later statement that uses it gets
    its own fresh copy of the reference, so ``dhprebn = dbndiff; dhprebn += ...`` cannot
    add onto the reference that later statements read. Other reads (looking, or building
    the name) get the student's own tensor. A handed-in value (the student's own or such
    a copy) changed in place afterwards is *altered*: the notebook would end with that
    value, so it is handed in again at the end, with the line that changed it. So is a gradient handed in or
    built from other gradients, then rescaled by a statement that reads no other gradient (``dX /= n``,
    ``dX = dX / n``, ``dW2, db2 = dW2 / n, db2 / n``, a call of a function doing so through ``global``) or
    bound to a temporary rescaled likewise: in independent grading it was built from references that the
    rescaling does not fit. And so is a handed-in gradient bound to another tensor by any later statement
    (``dh = dh + dlogits @ W2.T`` once more): the notebook ends with that one.
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        tracked: Mapping[str, str],
        link: Link,
        independent: bool,
        given: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(values)
        self._given_names = dict(given or {})
        """``d<name>`` -> variable of the gradients the part starts from: read before being bound, the reference."""
        self._inputs: dict[str, Any] = {}
        self._given = frozenset(values)
        self.role = LOOKING
        self._tracked = dict(tracked)
        self._recorded: set[str] = set()
        self._link = link
        self._independent = independent
        self._references: dict[str, Any] = {}
        self._drafted: dict[str, tuple[int, ...]] = {}
        self._copies: dict[str, Any] = {}
        self._watched: list[tuple[str, torch.Tensor, int]] = []
        self._derived: set[str] = set()
        """Gradients some statement so far built from another gradient."""
        self._bound: dict[str, Any] = {}
        """Gradient -> the value it was last handed in or altered with: bound to another, it is altered again."""
        self.altered: dict[str, tuple[torch.Tensor, int]] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._given_names and not super().__contains__(key):
            return self._input(key)
        if not (self._independent and key in self._tracked and self.role.counts(key)):
            return super().__getitem__(key)
        if key not in self._recorded:
            self._record(key, reply=True)
        if key not in self._references:
            return super().__getitem__(key)
        if key not in self._copies:
            reference = self._references[key]
            self._copies[key] = (
                self._watch(key, reference.clone()) if isinstance(reference, torch.Tensor) else reference
            )
        return self._copies[key]

    def _input(self, key: str) -> Any:
        """A gradient the part starts from, read before the submission bound it: a fresh copy of its reference, asked
        for once (a NameError, as for any unknown name, when the grader has none)."""
        if key not in self._inputs:
            self._inputs[key] = self._link.commit(self._given_names[key], _MISSING, reply=True)
        reference = self._inputs[key]
        if reference is None:
            raise NameError(f"name {key!r} is not defined", name=key)
        return reference.clone() if isinstance(reference, torch.Tensor) else reference

    def start(self, role: Role) -> None:
        """A new statement begins: its reads are judged by ``role``, and it gets fresh copies."""
        self.role = role
        self._copies = {}

    def settle(self, line: int) -> None:
        """After a statement at ``line``: note every handed-in value it changed in place."""
        for key, tensor, version in self._watched:
            if key not in self.altered and tensor._version != version:
                self.altered[key] = (tensor, line)

    def stamps(self, role: Role) -> dict[str, tuple[Any, tuple[int, ...]]]:
        """Before a statement of ``role``: each gradient it rescales, when that is a tensor already computed (handed
        in, or built from other gradients), and each it binds to a rescaled temporary, whatever that is, with
        its stamp (see :func:`_stamp`). The value is kept so that its id cannot be reused by the statement's own
        result (``for _ in range(2): dW2 = dW2 / 2`` frees the first tensor before making the last)."""
        self._derived |= role.derives | role.finishes
        keys = [key for key in role.rescales if key in self._recorded or key in self._derived]
        values = {key: dict.get(self, key, _MISSING) for key in keys}
        values = {key: value for key, value in values.items() if isinstance(value, torch.Tensor)}
        values |= {key: dict.get(self, key, _MISSING) for key in role.finishes}
        return {key: (value, _stamp(value)) for key, value in values.items()}

    def rescaled(self, before: Mapping[str, tuple[Any, tuple[int, ...]]], line: int) -> None:
        """After a statement at ``line`` that rescales gradients already computed (``dX /= n``, ``dX = dX / n``;
        ``before`` holds their values and stamps before it, see :meth:`stamps`): each one it changed is altered,
        as it stands now."""
        for key, (kept, stamp) in before.items():
            value = super().get(key, _MISSING)
            if isinstance(value, torch.Tensor) and (value is not kept or _stamp(value) != stamp):
                self.altered[key] = (value, line)
                self._bound[key] = value

    def rebound(self, line: int) -> None:
        """After the statement at ``line``: each gradient handed in (or altered) and now bound to another tensor,
        whatever bound it (a tuple, a helper, ``globals()``), is altered, as bound now."""
        for key, kept in self._bound.items():
            value = super().get(key, _MISSING)
            if value is not kept and isinstance(value, torch.Tensor):
                self.altered[key] = (value, line)
                self._bound[key] = value

    def draft(self, pending: Collection[str], line: int) -> None:
        """After the statement at ``line``: send each graded gradient that is bound, uncommitted, not among
        ``pending`` (names a later statement writes) and changed since last sent, as it stands now. One
        changed after it was sent was altered by a statement that does not build it (``g /= n`` in a loop)."""
        for key, variable in self._tracked.items():
            value = super().get(key, _MISSING)
            if key in self._recorded or key in pending or value is _MISSING:
                continue
            stamp, sent = _stamp(value), self._drafted.get(key)
            if sent == stamp:
                continue
            if sent is not None and isinstance(value, torch.Tensor):
                self.altered.setdefault(key, (value, line))
            self._drafted[key] = stamp
            self._link.draft(variable, value)

    def _watch(self, key: str, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            self._watched.append((key, value, value._version))
        return value

    def _record(self, key: str, reply: bool) -> None:
        value = super().get(key, _MISSING)
        self._recorded.add(key)
        reference = self._link.commit(self._tracked[key], value, reply)
        if reference is not None:
            self._watch(key, value)
            self._references[key] = reference
            self._bound[key] = value

    def finish(self, unreached: Collection[str] = ()) -> None:
        """Hand in every graded gradient the submission bound and nobody used, at its final value (as missing
        when the run stopped before a statement that builds it), then every handed-in value changed in place
        since, as it ended up."""
        self.role = LOOKING
        for key in self._tracked:
            if key not in self._recorded and key in unreached:
                self._recorded.add(key)
                self._link.commit(self._tracked[key], _MISSING, reply=False)
            elif key not in self._recorded and super().__contains__(key):
                self._record(key, reply=False)
        for key, (tensor, line) in self.altered.items():
            self._link.alter(self._tracked[key], tensor, line)
        for name in self._unclaimed():
            self._link.commit(UNCLAIMED + name, _MISSING, reply=False)

    def _unclaimed(self) -> list[str]:
        """Names the submission bound that look like a misspelt graded gradient (``dlogits_maxes``): only
        the names cross, so the grader can say "did you mean"."""
        bound = [key for key in dict.__iter__(self) if isinstance(key, str) and key not in self._given]
        tracked = list(self._tracked)
        close = [name for name in bound[:1000] if name not in self._tracked and close_matches(name, tracked)]
        return close[:MAX_UNCLAIMED]


class BoundedOutput:
    """``sys.stdout``/``sys.stderr`` of the child: writes to fd 1 until ``limit`` bytes, then drops the rest."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit

    def write(self, text: str) -> int:
        data = str(text).encode("utf-8", "replace")[: self.remaining]
        try:
            self.remaining -= os.write(1, data) if data else 0
        except OSError:  # the file-size limit, reached by output written below Python (torch's C code)
            self.remaining = 0
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""

    def isatty(self) -> bool:
        return False


def execute(source: str, filename: str, values: Mapping[str, Any], job: Mapping[str, Any], replies: Reader) -> None:
    """Run the submission and report every graded gradient and the outcome to the grader, reading the grader's
    answers from ``replies``, the stream the job came from."""
    link = Link(job["max_payload"], replies)
    builtins = {"torch": torch, "F": F, "cmp": _cmp, "__name__": "__main__", "__file__": filename}
    namespace = GradientNamespace(
        {**materialize(values), **builtins}, job["tracked"], link, job["independent"], job.get("given")
    )
    statements, plan = _statements(source, filename, job["tracked"], link)
    pending = _pending(plan)
    unreached: set[str] = set()
    for index, (statement, role) in enumerate(zip(statements, plan, strict=True)):
        namespace.start(role)
        before = namespace.stamps(role)
        try:
            exec(compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec"), namespace)
        except BaseException as error:  # the submission's failure, whatever it is, is reported, not raised
            event = _describe_error(error, filename, source)
            if not _ignorable(error, event, role):
                link.send(event)
                unreached = set().union(*(later.writes for later in plan[index:]))
                break
            link.note(f"{event['message']} (in a statement that only looks at values; ignored)")
        finally:
            namespace.settle(statement.lineno)
            namespace.rescaled(before, statement.lineno)
            namespace.rebound(statement.lineno)
        if not _handed(functools.partial(namespace.draft, pending[index], statement.lineno), link, filename, source):
            unreached = set().union(*(later.writes for later in plan[index + 1 :]))
            break
    _handed(functools.partial(namespace.finish, unreached), link, filename, source)
    link.send({"op": "done"})


def _handed(send: Callable[[], None], link: Link, filename: str, source: str) -> bool:
    """Run ``send`` (values handed to the grader); False, with the failure reported as the submission's, when
    copying a value failed: a gradient too large to copy within the memory limit is out of memory, not "the
    sandbox failed before the submission ran"."""
    try:
        send()
    except BaseException as error:  # noqa: BLE001 - what the submission's values do is reported, never raised
        link.send(_describe_error(error, filename, source))
        return False
    return True


def _statements(
    source: str, filename: str, tracked: Mapping[str, str], link: Link
) -> tuple[list[ast.stmt], list[Role]]:
    """The submission's top-level statements and their roles; none, the error sent, when it cannot be parsed or
    nests too deeply to be read (``1+1+...+1``: 2,000 terms parsed, then reading the roles ran out of recursion, and
    the row blamed the sandbox: "the sandbox failed before the submission ran")."""
    try:
        tree = ast.parse(source, filename)
        return tree.body, roles(tree.body, tracked)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:  # 1+1+...+1, - - ... -1: too deep
        line = getattr(error, "lineno", None)
        said = f": {error}" if str(error) else ""  # a MemoryError says nothing
        message = f"{type(error).__name__}{said}{_why_unparsed(error)}"
        link.send({"op": "error", "kind": "syntax", "message": message, "line": line})
        return [], []


def _why_unparsed(error: BaseException) -> str:
    """What a parse that failed without a syntax error ran out of: recursion (``1+1+...+1``) or memory, which the
    parser runs out of on deep nesting (``- - ... -1``) and on size alike (260,000 lines of ``a=1`` within the
    memory limit, which said only "nests too deeply" before)."""
    if isinstance(error, MemoryError):
        return " (the source nests too deeply to be parsed, or is too large to be parsed within the memory limit)"
    return "" if isinstance(error, (SyntaxError, ValueError)) else " (the source nests too deeply to be parsed)"


def _stamp(value: Any) -> tuple[int, ...]:
    """What changes when ``value`` is rebound, changed in place, or given new storage (``x.data = y``)."""
    if not isinstance(value, torch.Tensor):
        return (id(value),)
    try:
        return id(value), value._version, torch.Tensor.data_ptr(value)
    except RuntimeError:  # a layout without one storage (sparse)
        return id(value), value._version


def _pending(plan: list[Role]) -> list[frozenset[str]]:
    """For each statement, the names some later statement writes: a gradient among them is not finished yet."""
    later: frozenset[str] = frozenset()
    pending = []
    for role in reversed(plan):
        pending.append(later)
        later |= role.writes
    return pending[::-1]


def _ignorable(error: BaseException, event: Mapping[str, Any], role: Role) -> bool:
    """An ordinary exception in a statement that only looks: a note, not the end of the run. Running out of
    memory, exiting, using autograd and what the sandbox refuses (OSError) end it wherever they happen."""
    plain = isinstance(error, Exception) and not isinstance(error, (AutogradNotAllowed, OSError))
    return role.looking and plain and event["kind"] == "exception"


def _cmp(*args: Any, **kwargs: Any) -> None:
    """The notebook's ``cmp`` lines run, but print nothing: the grader does the comparing."""


def _describe_error(error: BaseException, filename: str, source: str) -> dict[str, Any]:
    """The error event: what was raised, where in the submission, and what kind of failure it is."""
    line = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename == filename:
            line = lineno
    name = type(error).__name__
    try:
        text = str(error)[:500]
    except Exception:  # a hostile __str__
        text = ""
    undefined = getattr(error, "name", None) if isinstance(error, NameError) else None
    if type(undefined) is str:
        text += (
            f" (the exercise may rely only on the forward's values, the names the assignment declares and simple "
            f"constants of earlier cells; {undefined[:100]!r} is none of them)"
        )
    kind = "exception"
    if _out_of_memory(error):
        kind = "memory"
    elif isinstance(error, SystemExit):
        kind, text = "exit", f"the submission called sys.exit({text})"
    where = ""
    if line is not None:
        code = source.splitlines()[line - 1].strip() if 0 < line <= len(source.splitlines()) else ""
        where = f" at line {line}" + (f": {code[:200]}" if code else "")
    return {
        "op": "error",
        "kind": kind,
        "message": f"{name}{where}: {text}" if text else f"{name}{where}",
        "line": line,
    }


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is running out of memory: Python's MemoryError, or torch's allocator failing."""
    if isinstance(error, MemoryError):
        return True
    try:
        return isinstance(error, RuntimeError) and "allocate" in str(error)
    except Exception:  # a hostile __str__
        return False


def install_output(limit: int) -> BoundedOutput:
    """Route Python-level printing through one bounded writer."""
    output = BoundedOutput(limit)
    sys.stdout = sys.stderr = output  # type: ignore[assignment]
    return output
