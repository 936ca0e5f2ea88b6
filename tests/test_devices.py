"""The device × dtype matrix: one Report, a pivot view, skipped cells with reasons, cross-device checks.

Without a GPU, cpu float32 against cpu float64 plays the two devices; the tests marked
``cuda`` run only where CUDA is available (benchmarks/gpu_smoke.sh runs them there).
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gradcheck_kit import Case, Graph, check, load_cases, run_case
from gradcheck_kit.check import cross_check
from gradcheck_kit.devices import cross_pairs, parse_dtype, skip_reason

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"
BACKWARD = (MAKEMORE / "backward_ex1.py").read_text()
CUDA = torch.cuda.is_available()
cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")


def small_graph() -> Graph:
    def inputs():
        g = torch.Generator().manual_seed(0)
        return {"x": torch.randn(4, 3, generator=g), "w": torch.randn(3, 2, generator=g).requires_grad_()}

    return Graph("small", "y = x @ w\nz = torch.tanh(y)\nloss = (z * z).sum()", inputs)


RIGHT = "dz = 2 * z\ndy = (1 - z**2) * dz\ndw = x.T @ dy"
WRONG = RIGHT.replace("dw = x.T @ dy", "dw = x.T @ dy * 1.01")


@pytest.fixture(scope="module")
def makemore() -> Graph:
    return {case.name: case for case in load_cases(MAKEMORE)}["makemore-ex1"].graph


def test_parse_dtype_names_the_choices():
    assert parse_dtype("torch.bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="float64, float32, float16, bfloat16"):
        parse_dtype("int8")


def test_skip_reasons():
    assert skip_reason("cpu") is None
    with pytest.raises(ValueError, match="device 'xpu' is not supported by gradcheck-kit"):
        skip_reason("xpu")
    with pytest.raises(ValueError, match="unknown device 'gpu0': expected one of cpu, cuda, mps"):
        skip_reason("gpu0")
    assert skip_reason("cuda:99") is not None


@pytest.mark.skipif(CUDA, reason="checks the reason given where CUDA is absent")
def test_cuda_cells_are_skipped_rows_carrying_the_reason():
    case = Case("small", small_graph(), RIGHT, devices=("cpu", "cuda"), dtypes=("float64", "float32"))
    report = run_case(case)
    skipped = [r for r in report.rows if r.device == "cuda"]
    assert [(r.dtype, r.status) for r in skipped] == [("float64", "skipped"), ("float32", "skipped")]
    assert all("CUDA is not available" in r.message for r in skipped)
    assert report.passed


def test_matrix_is_one_report_and_pivots_to_variable_by_device_dtype():
    case = Case("small", small_graph(), WRONG, devices=("cpu", "cuda:99"), dtypes=("float64", "float32", "float16"))
    report = run_case(case)
    assert {(r.device, r.dtype) for r in report.rows} == {
        (d, t) for d in ("cpu", "cuda:99") for t in ("float64", "float32", "float16")
    }
    status = report.pivot()
    assert list(status.index) == [("small", "z"), ("small", "y"), ("small", "w")]
    assert list(status.columns)[:3] == [("cpu", "float64"), ("cpu", "float32"), ("cpu", "float16")]
    assert status.loc[("small", "w"), ("cpu", "float32")] == "mismatch"
    assert status.loc[("small", "z"), ("cpu", "float64")] == "ok"
    assert set(status[("cuda:99", "float16")]) == {"skipped"}
    maxdiff = report.pivot("maxdiff")
    assert maxdiff.loc[("small", "z"), ("cpu", "float16")] == 0.0
    assert maxdiff.loc[("small", "w"), ("cpu", "float64")] > 0


def test_pivot_rejects_an_unknown_figure():
    with pytest.raises(ValueError, match="no column 'speed'"):
        check(small_graph(), RIGHT).pivot("speed")


def test_cross_pairs_only_pair_usable_devices():
    assert cross_pairs(["cpu", "cpu", "cuda:99"]) == []
    assert cross_pairs(["cpu", "cuda"]) == ([("cpu", "cuda"), ("cuda", "cpu")] if CUDA else [])


def test_cross_check_float32_manual_against_float64_reference(makemore):
    report = cross_check(makemore, BACKWARD, ("cpu", "float32"), ("cpu", "float64"))
    assert report.passed, report.failures
    assert {(r.device, r.dtype) for r in report.rows} == {("cpu->cpu", "float32->float64")}
    assert report["W1"].rtol == 1.3e-6
    buggy = BACKWARD.replace("dW2 = h.T @ dlogits", "dW2 = h.T @ dlogits * 1.001")
    crossed = cross_check(makemore, buggy, ("cpu", "float32"), ("cpu", "float64"))
    assert crossed["W2"].status == "mismatch"
    assert list(crossed.tensors) == [("makemore", "cpu->cpu", "float32->float64", "W2")]  # the heatmap follows


@cuda
def test_cuda_cells_run_and_pass(makemore):
    case = Case("mm", makemore, BACKWARD, devices=("cpu", "cuda"), dtypes=("float32",))
    report = run_case(case, cross=True)
    assert report.passed, report.failures
    assert {r.device for r in report.rows} == {"cpu", "cuda", "cpu->cuda", "cuda->cpu"}


@cuda
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_low_precision_under_the_rule(makemore, dtype):
    from gradcheck_kit.reference import Rule

    assert check(makemore, BACKWARD, device="cuda", dtype=dtype, rule=Rule()).passed
    buggy = BACKWARD.replace("(1.0 / (n - 1)) * torch.ones_like", "(1.0 / n) * torch.ones_like")
    assert not check(makemore, buggy, device="cuda", dtype=dtype, rule=Rule()).passed


def test_cli_reference_rule_over_the_dtype_matrix_as_a_pivot(capsys):
    from gradcheck_kit.cli import main

    argv = ["check", str(MAKEMORE), "--case", "makemore-ex1", "--rule", "reference", "--pivot", "status"]
    assert main([*argv, "--dtype", "float16", "--dtype", "bfloat16", "--device", "cpu", "--device", "cuda:99"]) == 0
    out = capsys.readouterr().out
    assert "float16" in out and "bfloat16" in out and "skipped" in out
    assert main([*argv, "--dtype", "float16", "--k", "0", "--floor", "0"]) == 1


def test_cli_rtol_needs_atol(capsys):
    from gradcheck_kit.cli import main

    assert main(["check", str(MAKEMORE), "--rtol", "1e-3"]) == 2
    assert "--rtol and --atol go together" in capsys.readouterr().err


def test_cross_over_two_names_of_one_device_is_a_usage_error():
    """--cross --device cpu --device cpu:0 judged cpu's gradients against cpu's autograd and printed it as a
    cross-device check (cpu->cpu:0, passed)."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", "check", str(MAKEMORE), "--cross", "--device", "cpu"]
    done = subprocess.run([*command, "--device", "cpu:0"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--cross needs two usable devices" in done.stderr and "(names of one device)" in done.stderr, done.stderr
    assert cross_pairs(["cpu:1", "cpu"]) == []


def test_cross_check_float64_manual_against_float32_reference(makemore):
    """The manual gradients computed in float64 judged against float32 autograd: the right db1 (8.7e-19, zero in
    exact arithmetic) failed against autograd's 2.3e-9 of float32 round-off, which was measured on the float64
    run instead of the float32 one."""
    report = cross_check(makemore, BACKWARD, ("cpu", "float64"), ("cpu", "float32"))
    assert report.passed, report.to_table()
    buggy = BACKWARD.replace("dW2 = h.T @ dlogits", "dW2 = h.T @ dlogits * 1.001")
    crossed = cross_check(makemore, buggy, ("cpu", "float64"), ("cpu", "float32"))
    assert crossed["W2"].status == "mismatch" and crossed["W2"].root_cause, crossed.to_table()


@pytest.mark.parametrize(("manual_on", "reference_on"), [("float16", "float32"), ("float16", "float16")])
def test_a_half_precision_cross_check_of_the_right_backward_passes(makemore, manual_on, reference_on):
    """check() judges float16/bfloat16 cells by the reference rule; cross_check does not, so the reference
    solution failed 14-19 of its 26 gradients (and Bessel's mistake was blamed on counts)."""
    report = cross_check(makemore, BACKWARD, ("cpu", manual_on), ("cpu", reference_on))
    assert report.passed, report.to_table()
