"""Benchmark gradcheck-kit on the makemore example against the notebook's own check and torch gradcheck.

    python benchmarks/bench_check.py [--repeats N]

Prints, from one run on one machine, the median wall time of:

1. the hand-written baseline, as the notebook does it: forward, a hand-listed
   ``retain_grad`` loop, ``loss.backward()``, the manual backward (backward_ex1.py,
   compiled once, as the check caches it) and its 26 ``cmp`` calls, each computing
   cmp's three figures and keeping them (no printing: the check formats nothing either);
2. the same check through ``gradcheck_kit.check`` (capture, reference, manual on
   copies, every metric, Report built; no printing);
   and the physical floor: forward, ``loss.backward()`` and the manual backward with a
   no-op ``cmp``, nothing retained or compared (what any check must do at least);
3. ``torch.autograd.gradcheck`` on the same forward w.r.t. the 7 parameters in
   float64, slow and fast mode (it checks 7 tensors, not 26);
4. one Exercise 4 training step (n_hidden=200): manual backward vs ``loss.backward()``;
5. comparing two 16M-element float32 tensors: ``gradcheck_kit.compare.compare``
   (all metrics) vs ``cmp``'s three, with the peak extra memory of each, measured
   as the peak RSS growth of a fresh subprocess after it allocated its inputs.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
MAKEMORE = ROOT / "examples" / "makemore"
sys.path.insert(0, str(MAKEMORE))

from data import splits  # noqa: E402
from model import BATCH_SIZE, BLOCK_SIZE, SEED, forward, init_params, make_inputs  # noqa: E402
from timing import interleaved_ms, median_ms  # noqa: E402
from train import backward as train_backward  # noqa: E402
from train import forward as train_forward  # noqa: E402
from train import sgd  # noqa: E402

from gradcheck_kit import Graph, check  # noqa: E402
from gradcheck_kit.compare import compare  # noqa: E402
from gradcheck_kit.tolerance import Tolerance  # noqa: E402

BACKWARD_EX1 = MAKEMORE / "backward_ex1.py"
PARAMETERS = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")
BIG_NUMEL = 1 << 24
"""16M elements: 64 MiB per float32 tensor."""
MIB = 1 << 20


# --------------------------------------------------------------------------- timing


# --------------------------------------------------------------------------- 1. the notebook's own way


def notebook_cmp(s: str, dt: torch.Tensor, t: torch.Tensor) -> tuple[str, bool, bool, float]:
    """The makemore notebook's ``cmp``: its three figures, returned instead of printed."""
    ex = torch.all(dt == t.grad).item()
    app = torch.allclose(dt, t.grad)
    maxdiff = (dt - t.grad).abs().max().item()
    return s, ex, app, maxdiff


def no_cmp(s: str, dt: torch.Tensor, t: torch.Tensor) -> None:
    """The floor's ``cmp``: nothing compared."""


def forward_body() -> Any:
    """model.forward's body as module-level code (the notebook cell): its locals become globals."""
    function = ast.parse(inspect.getsource(forward)).body[0]
    body = [s for s in function.body[1:] if not isinstance(s, ast.Return)]  # drop docstring and return
    return compile(ast.Module(body=body, type_ignores=[]), "<forward cell>", "exec")


FORWARD_CELL = forward_body()
BACKWARD_CELL = compile(BACKWARD_EX1.read_text(), str(BACKWARD_EX1), "exec")
"""backward_ex1.py compiled once, as gradcheck-kit caches it."""


def notebook_check() -> dict[str, Any]:
    """Forward, retain_grad by hand, backward, manual gradients and 26 cmp calls, as in the notebook."""
    ns: dict[str, Any] = {"torch": torch, "F": F, "cmp": notebook_cmp, **make_inputs()}
    exec(FORWARD_CELL, ns)
    for t in [
        ns["logprobs"], ns["probs"], ns["counts_sum_inv"], ns["counts_sum"], ns["counts"],
        ns["norm_logits"], ns["logit_maxes"], ns["logits"], ns["h"], ns["W2"], ns["b2"],
        ns["hpreact"], ns["bngain"], ns["bnbias"], ns["bnraw"], ns["bnvar_inv"], ns["bnvar"],
        ns["bndiff2"], ns["bndiff"], ns["bnmeani"], ns["hprebn"], ns["embcat"], ns["W1"],
        ns["b1"], ns["emb"], ns["C"],
    ]:  # fmt: skip
        t.retain_grad()
    ns["loss"].backward()
    exec(BACKWARD_CELL, ns)  # dX = ... then 26 cmp(...) lines
    return ns


def floor_check() -> dict[str, Any]:
    """Forward, ``loss.backward()``, the manual gradients; no retain_grad, nothing compared."""
    ns: dict[str, Any] = {"torch": torch, "F": F, "cmp": no_cmp, **make_inputs()}
    exec(FORWARD_CELL, ns)
    ns["loss"].backward()
    exec(BACKWARD_CELL, ns)
    return ns


# --------------------------------------------------------------------------- 2. gradcheck-kit

GRAPH = Graph("makemore", forward, make_inputs)


def kit_check() -> Any:
    """The same check through gradcheck-kit: a Report, no printing."""
    return check(GRAPH, BACKWARD_EX1)


# --------------------------------------------------------------------------- 3. torch.autograd.gradcheck


def gradcheck_inputs() -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    """The 7 parameters in float64 (requiring grad) and the fixed rest of the forward's inputs."""
    inputs = make_inputs()
    params = tuple(inputs[k].detach().double().requires_grad_() for k in PARAMETERS)
    rest = {k: v for k, v in inputs.items() if k not in PARAMETERS}
    return params, rest


def torch_gradcheck(fast: bool) -> Callable[[], bool]:
    """A call of torch.autograd.gradcheck on the makemore forward, slow or fast mode."""
    params, rest = gradcheck_inputs()

    def loss(*p: torch.Tensor) -> torch.Tensor:
        return forward(**dict(zip(PARAMETERS, p, strict=True)), **rest)

    return lambda: torch.autograd.gradcheck(loss, params, fast_mode=fast)


# --------------------------------------------------------------------------- 4. an Exercise 4 training step


class Trainer:
    """One SGD step of Exercise 4 (n_hidden=200) with train.py's forward and update, and either
    train.py's hand-written backward or ``loss.backward()``."""

    def __init__(self, n_hidden: int = 200, lr: float = 0.1) -> None:
        (self.Xtr, self.Ytr), _, _ = splits(None, BLOCK_SIZE)
        self.g = torch.Generator().manual_seed(SEED)
        p = init_params(n_hidden, self.g)
        self.params = [p[k] for k in PARAMETERS]
        self.lr = lr

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(0, self.Xtr.shape[0], (BATCH_SIZE,), generator=self.g)
        return self.Xtr[ix], self.Ytr[ix]

    @torch.no_grad()
    def manual_step(self) -> list[torch.Tensor]:
        """train.py's step: forward, the hand-written backward (Exercises 2 and 3 fused), SGD update."""
        Xb, Yb = self.batch()
        loss, saved = train_forward(self.params, Xb, Yb)
        grads = train_backward(self.params, Xb, Yb, saved)
        sgd(self.params, grads, self.lr)
        loss.item()
        return grads

    def autograd_step(self) -> list[torch.Tensor]:
        """The same forward, ``loss.backward()``, the same SGD update."""
        for p in self.params:
            p.requires_grad_(True)
            p.grad = None
        Xb, Yb = self.batch()
        loss, _ = train_forward(self.params, Xb, Yb)
        loss.backward()
        grads = [p.grad for p in self.params]
        with torch.no_grad():
            sgd(self.params, grads, self.lr)
        loss.item()
        return grads


def training_steps_agree() -> bool:
    """Sanity check: from the same state and batch, both steps give the same gradients."""
    manual, auto = Trainer(), Trainer()
    return all(torch.allclose(a, b, atol=1e-6) for a, b in zip(manual.manual_step(), auto.autograd_step(), strict=True))


# --------------------------------------------------------------------------- 5. two 16M-element tensors


def big_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two float32 tensors of 16M elements that differ slightly everywhere."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(BIG_NUMEL, generator=g)
    b = a.clone()
    b.add_(torch.randn(BIG_NUMEL, generator=g), alpha=1e-6)
    return a, b


def cmp_three(a: torch.Tensor, b: torch.Tensor) -> tuple[bool, bool, float]:
    """The notebook cmp's three figures (exact, approximate, maxdiff), on plain tensors."""
    return torch.all(a == b).item(), torch.allclose(a, b), (a - b).abs().max().item()


def kit_compare(a: torch.Tensor, b: torch.Tensor) -> Any:
    """Every metric of gradcheck-kit for one pair."""
    return compare(a, b, Tolerance(1.3e-6, 1e-5))


PROBES: dict[str, Callable[[torch.Tensor, torch.Tensor], Any]] = {
    "one temporary (a - b), calibration": lambda a, b: a - b,
    "cmp's three": cmp_three,
    "gradcheck_kit.compare": kit_compare,
}


def vm_hwm() -> int:
    """This process's peak resident set size in bytes (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_probe(name: str) -> None:
    """Run in a fresh subprocess: print the peak RSS growth of one probe, after its inputs exist."""
    probe = PROBES[name]
    small = torch.randn(1 << 12), torch.randn(1 << 12)
    probe(*small)  # load the code paths and thread pools before measuring
    a, b = big_pair()
    reset = reset_hwm()
    before = vm_hwm()
    probe(a, b)
    print(json.dumps({"extra": vm_hwm() - before, "reset": reset}))


def peak_extra(name: str, tries: int = 3) -> tuple[int, int, bool]:
    """Least and most peak extra bytes of probe ``name`` over ``tries`` fresh interpreters.

    The allocator's reuse of freed memory varies from run to run, hence a range.
    """
    results = []
    for _ in range(tries):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-probe", name], check=True, capture_output=True, text=True
        ).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    extras = [r["extra"] for r in results]
    return min(extras), max(extras), all(r["reset"] for r in results)


# --------------------------------------------------------------------------- report


def machine() -> str:
    """One line naming the machine and the software."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )


def load() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def table(rows: list[tuple[str, str, str]]) -> str:
    """A plain three-column table: what, figure, note."""
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]}".rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def run_checks(repeats: int) -> list[tuple[str, str, str]]:
    """Sections 1-3: the makemore check three ways, and their ratios."""
    heavy = max(3, repeats // 5)
    report = kit_check()
    assert report.passed and len(report.rows) == 26, report.summary()
    slow, fast = torch_gradcheck(fast=False), torch_gradcheck(fast=True)
    assert slow() and fast()
    inputs = median_ms(make_inputs, repeats)
    baseline, kit, floor = interleaved_ms([notebook_check, kit_check, floor_check], repeats, warmup=2)
    gc_slow = median_ms(slow, heavy, warmup=1)
    gc_fast = median_ms(fast, repeats)
    return [
        ("makemore Exercise 1 check (float32, CPU)", "ms", "runs"),
        ("  make_inputs() alone (in each of the next three)", f"{inputs:.2f}", str(repeats)),
        ("  hand-written: forward, retain_grad, backward, manual, 26 cmp", f"{baseline:.2f}", str(repeats)),
        ("  gradcheck-kit: check(graph, backward_ex1.py) -> Report (26 rows)", f"{kit:.2f}", str(repeats)),
        ("  floor: forward, backward, manual; nothing retained or compared", f"{floor:.2f}", str(repeats)),
        ("  torch.autograd.gradcheck, float64, 7 params, slow mode", f"{gc_slow:.1f}", str(heavy)),
        ("  torch.autograd.gradcheck, float64, 7 params, fast mode", f"{gc_fast:.2f}", str(repeats)),
        ("  ratio gradcheck-kit / hand-written (goal <= 1.0x)", f"{kit / baseline:.2f}x", ""),
        ("  ratio gradcheck-kit / floor (goal <= 1.5x)", f"{kit / floor:.2f}x", ""),
        ("  ratio gradcheck slow / gradcheck-kit", f"{gc_slow / kit:.1f}x", ""),
        ("  ratio gradcheck fast / gradcheck-kit", f"{gc_fast / kit:.2f}x", ""),
    ]


def run_training(repeats: int) -> list[tuple[str, str, str]]:
    """Section 4: one Exercise 4 step, manual backward vs loss.backward()."""
    assert training_steps_agree()
    steps = 10 * repeats
    manual, auto = interleaved_ms([Trainer().manual_step, Trainer().autograd_step], steps, warmup=20)
    return [
        ("Exercise 4 training step (n_hidden=200, batch 32)", "ms", "runs"),
        ("  manual backward (train.py's step)", f"{manual:.3f}", str(steps)),
        ("  loss.backward()", f"{auto:.3f}", str(steps)),
        ("  ratio manual / loss.backward()", f"{manual / auto:.2f}x", ""),
    ]


def run_big_compare(repeats: int) -> list[tuple[str, str, str]]:
    """Section 5: two 16M-element float32 tensors, time and peak extra memory of each way."""
    heavy = max(3, repeats // 5)
    a, b = big_pair()
    kit, three = interleaved_ms([lambda: kit_compare(a, b), lambda: cmp_three(a, b)], heavy, warmup=1)
    tensor = BIG_NUMEL * 4
    rows = [
        ("Two 16M-element float32 tensors (64 MiB each)", "ms", "runs"),
        ("  cmp's three (==, allclose, abs().max())", f"{three:.1f}", str(heavy)),
        ("  gradcheck_kit.compare (every metric)", f"{kit:.1f}", str(heavy)),
        ("  ratio compare / cmp's three", f"{kit / three:.2f}x", ""),
        ("Peak extra memory, 3 fresh processes, after the inputs", "MiB (min-max)", "x one tensor (max)"),
    ]
    for name in PROBES:
        least, most, reset = peak_extra(name)
        how = "" if reset else " (VmHWM not reset: upper bound)"
        rows.append((f"  {name}", f"{least / MIB:.1f}-{most / MIB:.1f}", f"{most / tensor:.2f}x{how}"))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line: run every section and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per fast case (heavy cases: N/5, >= 3)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--memory-probe", choices=list(PROBES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    print(f"gradcheck-kit benchmark, {time.strftime('%Y-%m-%d')}: {machine()}")
    print(f"median wall time; warmup runs untimed; --repeats {args.repeats}; {load()}\n")
    for section in (run_checks, run_training, run_big_compare):
        print(table(section(args.repeats)), end="\n\n", flush=True)
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
