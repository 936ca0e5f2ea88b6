"""`gradcheck-kit check`: tables on stdout, report files, exit 0 / 1 / 2."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from gradcheck_kit.cli import main

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"

BROKEN_CASE = """
import sys
sys.path.insert(0, {makemore!r})
from pathlib import Path
from model import forward, make_inputs
from gradcheck_kit import Graph, register

code = Path({makemore!r}, "backward_ex1.py").read_text()
code = code.replace("dlogprobs[range(n), Yb] = -1.0 / n", "dlogprobs[range(n), Yb] = 1.0 / n")
code = code.replace("db2 = dlogits.sum(0)", "db2 = dlogits.sum(0, keepdim=True)")
register("broken", Graph("makemore", forward, make_inputs), code)
"""


@pytest.fixture
def broken_case(tmp_path: Path) -> Path:
    path = tmp_path / "gradcheck_broken.py"
    path.write_text(BROKEN_CASE.format(makemore=str(MAKEMORE)))
    return path


def test_makemore_passes_and_writes_every_row(tmp_path, capsys):
    assert main(["check", str(MAKEMORE), "--csv", str(tmp_path / "r.csv"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "makemore-ex1 [cpu-float32]: 26/26 ok" in out
    assert out.rstrip().endswith("3/3 checks passed")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 28
    assert {row["case"] for row in rows} == {"makemore-ex1", "makemore-ex2", "makemore-ex3"}


def test_broken_backward_fails_with_statuses_messages_and_root_cause(broken_case, capsys):
    assert main(["check", str(broken_case)]) == 1
    out = capsys.readouterr().out
    assert "root cause: logprobs" in out
    assert "ROOT CAUSE" in out and "follows from logprobs" in out
    assert "expected shape (27,), got (1, 27)" in out
    assert out.rstrip().endswith("0/1 checks passed, 1 failed")


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nothing.py")]) == 2
    assert "expected a .py file or a folder" in capsys.readouterr().err
    assert main(["check", str(tmp_path)]) == 2
    assert "no registered case found" in capsys.readouterr().err
    assert main(["check", str(MAKEMORE), "--case", "nope"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(MAKEMORE), "--dtype", "int3"])
    assert exit_info.value.code == 2


def test_unavailable_device_is_skipped_with_the_reason(capsys):
    assert main(["check", str(MAKEMORE), "--case", "makemore-ex2", "--device", "cpu", "--device", "cuda:7"]) == 0
    out = capsys.readouterr().out
    assert "makemore-ex2 [cuda:7-float32]: skipped:" in out


def test_console_script_runs_as_installed():
    result = subprocess.run(
        [sys.executable, "-m", "gradcheck_kit.cli", "check", str(MAKEMORE), "--compact", "--case", "makemore-ex2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "logits" in result.stdout


def test_a_mistyped_device_is_a_usage_error_not_a_skip(capsys):
    assert main(["check", str(MAKEMORE), "--device", "gpu0"]) == 2
    assert "unknown device 'gpu0'" in capsys.readouterr().err


def test_finite_differences_need_a_float64_cell(tmp_path, capsys):
    ex1 = [str(MAKEMORE / "gradcheck_makemore.py"), "--case", "makemore-ex1"]
    assert main(["check", *ex1, "--fd", "W2"]) == 2
    assert "--fd runs in float64 cells only" in capsys.readouterr().err
    assert main(["check", *ex1, "--fd", "W2", "--dtype", "float64", "--csv", str(tmp_path / "r.csv")]) == 0
    rows = {row["variable"]: row for row in csv.DictReader((tmp_path / "r.csv").open())}
    assert rows["W2"]["fd"] == "fd 3/3 ok" and rows["h"]["fd"] == ""
