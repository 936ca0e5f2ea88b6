"""The makemore example: each reference backward matches autograd, the template runs, training lowers the loss.

The comparison here is plain torch (capture the forward's locals, autograd, exec the backward file), so
these tests check the example itself independently of the gradcheck-kit engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from data import build_dataset, generated_words, splits
from model import forward, make_inputs
from train import train

HERE = Path(__file__).resolve().parent
EX1_VARIABLES = [
    "logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes", "logits", "h",
    "W2", "b2", "hpreact", "bngain", "bnbias", "bnraw", "bnvar_inv", "bnvar", "bndiff2", "bndiff", "bnmeani",
    "hprebn", "embcat", "W1", "b1", "emb", "C",
]  # fmt: skip


def forward_locals() -> dict[str, object]:
    """Run the forward once, keep its final locals, and fill in every tensor's ``.grad`` by autograd."""
    captured: dict[str, object] = {}

    def profile(frame, event, arg):
        if event == "return" and frame.f_code is forward.__code__:
            captured.update(frame.f_locals)

    sys.setprofile(profile)
    try:
        forward(**make_inputs())
    finally:
        sys.setprofile(None)
    for value in captured.values():
        if isinstance(value, torch.Tensor) and value.requires_grad and not value.is_leaf:
            value.retain_grad()
    captured["loss"].backward()
    return captured


def manual_grads(path: Path, values: dict[str, object]) -> dict[str, object]:
    """Exec a backward file in a namespace of copies of the forward values, as the harness does."""
    namespace = {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in values.items()}
    namespace.update(torch=torch, F=F, cmp=lambda *args: None)
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def maxdiffs(path: Path, variables: list[str]) -> dict[str, float]:
    values = forward_locals()
    grads = manual_grads(path, values)
    result = {}
    for name in variables:
        manual, reference = grads[f"d{name}"], values[name].grad
        assert manual.shape == reference.shape, name
        result[name] = (manual - reference).abs().max().item()
    return result


@pytest.mark.parametrize(
    ("file", "variables"),
    [("backward_ex1.py", EX1_VARIABLES), ("backward_ex2.py", ["logits"]), ("backward_ex3.py", ["hprebn"])],
)
def test_reference_backward_matches_autograd(file: str, variables: list[str]) -> None:
    diffs = maxdiffs(HERE / file, variables)
    assert set(diffs) == set(variables)
    assert max(diffs.values()) <= 1e-8, diffs


@pytest.mark.parametrize("file", ["backward_ex1.py", "backward_ex2.py", "backward_ex3.py"])
def test_template_runs_and_leaves_gradients_to_write(file: str) -> None:
    grads = manual_grads(HERE / "template" / file, forward_locals())
    todo = [k for k, v in grads.items() if k.startswith("d") and v is None]
    assert todo


def test_dataset_matches_the_notebook_layout() -> None:
    X, Y = build_dataset(["emma"], block_size=3)
    assert X.tolist() == [[0, 0, 0], [0, 0, 5], [0, 5, 13], [5, 13, 13], [13, 13, 1]]
    assert Y.tolist() == [5, 13, 13, 1, 0]
    assert generated_words() == generated_words()
    (Xtr, _), (Xdev, _), (Xte, _) = splits()
    assert Xtr.shape[0] > 6 * Xdev.shape[0] > 0 and Xte.shape[0] > 0  # 80/10/10 by words, not by examples


def test_make_inputs_is_reproducible() -> None:
    a, b = make_inputs(), make_inputs()
    assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))
    assert a["n"] == a["Xb"].shape[0] == 32


def test_training_lowers_the_loss() -> None:
    train_loss, val_loss, losses = train(300, progress=False)
    assert len(losses) == 300
    assert sum(losses[-50:]) / 50 < sum(losses[:10]) / 10 - 0.3
    assert train_loss < 2.8 and val_loss < 2.8


def test_cases_pass_through_gradcheck_kit() -> None:
    from gradcheck_kit import load_cases, run_case

    reports = {case.name: run_case(case) for case in load_cases(HERE / "gradcheck_makemore.py")}
    counts = {name: len(report.rows) for name, report in reports.items()}
    assert counts == {"makemore-ex1": 26, "makemore-ex2": 1, "makemore-ex3": 1}
    assert sorted(row.variable for row in reports["makemore-ex1"].rows) == sorted(EX1_VARIABLES)
    for report in reports.values():
        assert report.passed, report.failures
        assert all(row.approximate and row.maxdiff <= 1e-8 for row in report.rows)


def test_template_reports_every_gradient_as_missing() -> None:
    from gradcheck_kit import load_cases, run_case

    for case in load_cases(HERE / "template" / "check_template.py"):
        report = run_case(case)
        assert not report.passed
        assert {row.status for row in report.rows} == {"missing"}, case.name
