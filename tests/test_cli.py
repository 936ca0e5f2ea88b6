"""`gradcheck-kit check`: tables on stdout, report files, exit 0 / 1 / 2."""

import csv
import json
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
    assert out.rstrip().endswith("\n3 passed")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 28
    assert {row["case"] for row in rows} == {"makemore-ex1", "makemore-ex2", "makemore-ex3"}


def test_broken_backward_fails_with_statuses_messages_and_root_cause(broken_case, capsys):
    assert main(["check", str(broken_case)]) == 1
    out = capsys.readouterr().out
    assert "root cause: logprobs" in out
    assert "ROOT CAUSE" in out and "follows from logprobs" in out
    assert "expected shape (27,), got (1, 27)" in out
    assert out.rstrip().endswith("\n0 passed, 1 failed")


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


def test_fd_over_several_cases_spot_checks_those_that_have_the_variable(tiny: Path, tmp_path: Path) -> None:
    """--fd w over a folder made a case without w (a float32 one, never spot-checked) an error row: exit 1."""
    other = (
        "import torch\nfrom gradcheck_kit import Graph, register\n\n\n"
        "def forward_tanh(x):\n    s = x.tanh()\n    loss = s.sum()\n    return loss\n\n\n"
        "def inputs():\n    return {'x': torch.ones(4, 3, requires_grad=True)}\n\n\n"
        "backward = 'ds = torch.ones_like(s)\\ndx = ds * (1 - s**2)'\n"
        "register('no-w-here', Graph('other', forward_tanh, inputs), backward)\n"
    )
    (tiny / "gradcheck_other.py").write_text(other)
    result = cli("check", tiny, "--case", "tiny-right", "--case", "no-w-here", "--fd", "w", "--csv", tmp_path / "r.csv")
    assert result.returncode == 0, result.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert {row["case"] for row in rows} == {"tiny-right", "no-w-here"}
    assert all(row["status"] != "error" for row in rows)


TINY = """
import torch
from gradcheck_kit import Graph, register


def inputs():
    gen = torch.Generator().manual_seed(0)
    return {"x": torch.randn(4, 3, generator=gen), "w": torch.randn(3, 2, generator=gen, requires_grad=True)}


def forward(x, w):
    h = x @ w
    loss = (h * h).sum()
    return loss


GRAPH = Graph("tiny", forward, inputs)
register("tiny-right", GRAPH, "dh = 2 * h\\ndw = x.T @ dh", dtypes=("float32", "float64"))
register("tiny-wrong", GRAPH, "dh = 2 * h\\ndw = 3 * (x.T @ dh)  # a | in a note")
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A folder with one case file: ``tiny-right`` (float32 and float64) and ``tiny-wrong`` (float32)."""
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "gradcheck_tiny.py").write_text(TINY)
    return tmp_path / "cases"


def cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``gradcheck-kit ARGS`` in a subprocess, as a user or a CI job runs it."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)


def test_skipped_is_not_passed(tiny: Path, tmp_path: Path) -> None:
    result = cli("check", tiny, "--device", "cuda:7", "--json", tmp_path / "r.json")
    assert result.returncode == 5, result.stderr
    assert result.stdout.rstrip().endswith("0 passed, 3 skipped: nothing was checked (--allow-skipped to accept that)")
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["passed"] is False and document["counts"] == {"passed": 0, "failed": 0, "skipped": 3}
    allowed = cli("check", tiny, "--device", "cuda:7", "--allow-skipped")
    assert allowed.returncode == 0 and allowed.stdout.rstrip().endswith("0 passed, 3 skipped")
    assert "5 nothing was checked" in " ".join(cli("check", "--help").stdout.split())


def test_each_format_flag_writes_its_own_format_and_creates_folders(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "deeper"
    result = cli("check", tiny, "--csv", out / "r.json", "--json", out / "report", "--markdown", out / "r.markdown",
                 "--html", out / "x.htm")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert (out / "r.json").read_text().startswith("case,device,dtype,variable,")
    assert json.loads((out / "report").read_text())["counts"] == {"passed": 2, "failed": 1, "skipped": 0}
    assert "| name " in (out / "r.markdown").read_text()
    assert (out / "x.htm").read_text().startswith("<!DOCTYPE html>")


def test_csv_integer_columns_are_integers(tiny: Path, tmp_path: Path) -> None:
    cli("check", tiny, "--csv", tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert {(row["variable"], row["numel"], row["mismatched"]) for row in rows} == {("h", "8", "0"), ("w", "6", "0"),
                                                                                   ("w", "6", "6")}  # fmt: skip
    assert all(row["line"].isdigit() for row in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--csv", "afile/r.csv"], "--csv: cannot create"),
        (["--json", "/proc/r.json"], "--json: cannot create '/proc/r.json' in /proc"),
        (["--csv", "/sys/r.csv"], "--csv: cannot create '/sys/r.csv' in /sys"),
        (["--markdown", "/proc/version"], "--markdown: cannot write '/proc/version'"),
        (["--html", "."], "--html: '.' is a folder"),
        (["--rtol", "-1", "--atol", "0"], "--rtol: expected a finite number >= 0"),
        (["--rtol", "1e-3"], "--rtol and --atol go together"),
        (["--k", "3"], "--k and --floor are parameters of the reference rule"),
        (["--pivot", "colour"], "--pivot: no column 'colour'"),
        (["--fd", "nothing", "--dtype", "float64"], "--fd: no variable ['nothing'] in the selected cases"),
        (["--cross", "--device", "cpu"], "--cross needs two usable devices"),
        (["--timeout", "0"], "--timeout: expected a number of seconds > 0"),
        (["--timeout", "1e10"], "--timeout: expected a number of seconds > 0 and at most"),
        (["--timeout", "inf"], "--timeout: expected a number of seconds > 0 and at most"),
        (["--rule", "reference", "--k", "inf"], "--k: expected a finite number >= 0, got inf"),
        (["--rule", "reference", "--floor", "inf"], "--floor: expected a finite number >= 0, got inf"),
    ],
)
def test_usage_errors_exit_2_before_any_check_runs(tiny: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "afile").write_text("a file, not a folder")
    result = cli("check", tiny, *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_a_broken_case_file_is_one_error_row_and_the_others_run(tiny: Path) -> None:
    (tiny / "gradcheck_broken.py").write_text("import torch\n\ndef forward(:\n    pass\n")
    (tiny / "gradcheck_imports.py").write_text("import torch\nimport no_such_module_here\n")
    result = cli("check", tiny)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert f"gradcheck_broken.py: error: {tiny / 'gradcheck_broken.py'}:3: SyntaxError:" in result.stdout
    assert f"gradcheck_imports.py: error: {tiny / 'gradcheck_imports.py'}:2: ModuleNotFoundError:" in result.stdout
    assert "tiny-right [cpu-float64]: 2/2 ok" in result.stdout
    assert result.stdout.rstrip().endswith("2 passed, 3 failed")


@pytest.mark.parametrize("code", ["0", "None", "'done'"])
def test_a_case_file_that_exits_while_loaded_is_an_error_row_not_a_silent_exit(tiny: Path, code: str) -> None:
    """A script ending in sys.exit(0) with no __main__ guard ended the whole command with its own code: exit 0,
    nothing printed, a wrong gradient in another file unreported."""
    (tiny / "gradcheck_script.py").write_text(f"import sys\nprint('training...')\nsys.exit({code})\n")
    result = cli("check", tiny)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert f"gradcheck_script.py: error: {tiny / 'gradcheck_script.py'}:3: the file exits while it is loaded" in (
        result.stdout
    )
    assert "tiny-right [cpu-float64]: 2/2 ok" in result.stdout
    assert result.stdout.rstrip().endswith("2 passed, 2 failed")


def test_the_same_case_name_in_two_files_is_a_usage_error(tiny: Path) -> None:
    (tiny / "gradcheck_again.py").write_text("from gradcheck_tiny import GRAPH\nfrom gradcheck_kit import register\n\n"
                                             "register('tiny-right', GRAPH, 'dw = 0 * w')\n")  # fmt: skip
    result = cli("check", tiny)
    assert result.returncode == 2 and result.stdout == ""
    assert f"{tiny / 'gradcheck_again.py'}:4: case 'tiny-right' is already registered by" in result.stderr


def test_finite_differences_show_in_the_table_markdown_and_html(tiny: Path, tmp_path: Path) -> None:
    result = cli("check", tiny, "--case", "tiny-right", "--fd", "w", "--markdown", tmp_path / "r.md",
                 "--html", tmp_path / "r.html")  # fmt: skip
    assert result.returncode == 0, result.stderr
    for text in (result.stdout, (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()):
        assert "finite differences: fd " in text


def test_a_closed_pipe_ends_the_output_quietly(tiny: Path) -> None:
    command = [sys.executable, "-m", "gradcheck_kit.cli", "check", str(tiny)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `| head -1` does once it has its line
    assert process.wait(timeout=120) == 1
    assert process.stderr.read() == ""


def test_pivot_marks_cells_a_case_does_not_run(tiny: Path) -> None:
    result = cli("check", tiny, "--pivot", "status")
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["tiny-wrong", "h", "ok", "—"] in lines and "NaN" not in result.stdout and "None" not in result.stdout


def test_a_case_registered_with_the_reference_rule_is_judged_by_it(tiny: Path, tmp_path: Path) -> None:
    (tiny / "gradcheck_rule.py").write_text("from gradcheck_tiny import GRAPH\nfrom gradcheck_kit import register\n\n"
                                            "register('by-rule', GRAPH, 'dh = 2 * h\\ndw = x.T @ dh', rule='reference',"
                                            " dtypes=('bfloat16',))\n")  # fmt: skip
    cli("check", tiny, "--case", "by-rule", "--case", "tiny-right", "--csv", tmp_path / "r.csv")
    rules = {(row["case"], row["k"]) for row in csv.DictReader((tmp_path / "r.csv").open())}
    assert rules == {("by-rule", "2.0"), ("tiny-right", "")}
    cli("check", tiny, "--case", "by-rule", "--rule", "tolerance", "--csv", tmp_path / "r.csv")
    assert {row["k"] for row in csv.DictReader((tmp_path / "r.csv").open())} == {""}


def test_timeout_stops_an_endless_backward(tiny: Path) -> None:
    loop = "'dh = 2 * h\\nwhile True:\\n    pass\\n'"
    (tiny / "gradcheck_loop.py").write_text(f"from gradcheck_tiny import GRAPH\nfrom gradcheck_kit import register\n\n"
                                            f"register('loops', GRAPH, {loop})\n")  # fmt: skip
    result = cli("check", tiny, "--case", "loops", "--timeout", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "line 2" in result.stdout, result.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_report_the_system_refuses_is_one_line_and_exit_2_after_the_tables(tiny: Path, tmp_path: Path) -> None:
    result = cli("check", tiny, "--json", "/dev/full", "--csv", tmp_path / "kept.csv")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "gradcheck-kit check: cannot write the json report /dev/full: [Errno 28] No space left on device"
    )
    assert "[cpu-float32]" in result.stdout and (tmp_path / "kept.csv").exists()


REPEATED_CASE = """
import sys
sys.path.insert(0, {makemore!r})
from pathlib import Path
from model import forward, make_inputs
from gradcheck_kit import Graph, register

code = Path({makemore!r}, "backward_ex2.py").read_text()
register("twice", Graph("makemore", forward, make_inputs), code, dtypes=("float64", "float64"), variables=("logits",))
"""


@pytest.mark.parametrize("repeated", [["--dtype", "float32", "--dtype", "float32"], ["--device", "cpu"] * 2, []])
def test_a_device_or_dtype_given_twice_is_one_cell(tmp_path, repeated):
    """Each repeat ran the cell again: two tables in one, titled "2/2 ok" for one gradient."""
    (tmp_path / "gradcheck_twice.py").write_text(REPEATED_CASE.format(makemore=str(MAKEMORE)))
    command = [sys.executable, "-m", "gradcheck_kit.cli", "check", str(tmp_path), *repeated]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("logits  ") == 1 and ": 1/1 ok" in done.stdout, done.stdout
    assert done.stdout.rstrip().endswith("\n1 passed"), done.stdout


RELATIVE_CASE = """
from pathlib import Path
import torch
from gradcheck_kit import Graph, register

def inputs():
    generator = torch.Generator().manual_seed(0)
    return {"x": torch.randn(4, 3, generator=generator), "w": torch.randn(3, 2, generator=generator).requires_grad_()}

def forward(x, w):
    h = x @ w
    loss = (h * h).sum()
    return loss

register("as-string", Graph("relative", forward, inputs), "backward_relative.py")
register("as-path", Graph("relative", forward, inputs), Path("backward_relative.py"))
"""


def test_a_backward_file_named_relative_to_its_case_file_is_found_from_any_folder(tmp_path):
    """Run from the project root, every such case was 'FileNotFoundError: backward_relative.py' (exit 1)."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "gradcheck_relative.py").write_text(RELATIVE_CASE)
    (cases / "backward_relative.py").write_text("dh = 2 * h\ndw = x.T @ dh\n")
    command = [sys.executable, "-m", "gradcheck_kit.cli", "check", "cases"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("\n2 passed"), done.stdout


def test_a_mistyped_register_keyword_is_a_usage_error_naming_the_right_one(tmp_path):
    """register(..., dtype='float64') was an error row of its file and exit 1, as if a check had failed; the
    other refusals of register() are usage errors (exit 2) before anything runs."""
    case = RELATIVE_CASE.replace('"backward_relative.py")', '"dh = 2 * h\\ndw = x.T @ dh", dtype="float64")', 1)
    (tmp_path / "gradcheck_typo.py").write_text(case)
    command = [sys.executable, "-m", "gradcheck_kit.cli", "check", str(tmp_path / "gradcheck_typo.py")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unexpected keyword argument 'dtype'; did you mean dtypes=?" in done.stderr, done.stderr
    assert done.stdout == "", done.stdout


def test_check_runs_where_the_system_has_no_cpu_affinity(tiny: Path) -> None:
    """The grade parser's --jobs help counts the cores from os.sched_getaffinity, which only Linux has; building it
    for every command made `gradcheck-kit check` an AttributeError traceback on macOS. Simulated by removing it."""
    code = "import os, runpy; del os.sched_getaffinity; runpy.run_module('gradcheck_kit.cli', run_name='__main__')"
    command = [sys.executable, "-c", code, "check", str(tiny), "--compact", "--case", "tiny-right"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_a_mistyped_option_names_the_one_meant(tiny: Path) -> None:
    """'--cmpact' said 'gradcheck-kit: error: unrecognized arguments: --cmpact', not which option was meant."""
    result = cli("check", tiny, "--cmpact")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "gradcheck-kit check: error: unrecognized arguments: --cmpact; did you mean --compact?"
    )


TWO_CASES = """
import torch
from gradcheck_kit import Graph, register
def inputs():
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(4, 3, generator=g), "w": torch.randn(3, 2, generator=g).requires_grad_()}
G = Graph("small", "y = x @ w\\nz = torch.tanh(y)\\nloss = (z * z).sum()", inputs)
B = "dz = 2 * z\\ndy = (1 - z**2) * dz\\ndw = x.T @ dy\\n"
register("both", G, B, dtypes=("float32", "float64"))
register("float32_only", G, B, dtypes=("float32",))
"""


def test_fd_runs_in_the_cases_with_a_float64_cell_and_skips_a_float32_only_one(tmp_path):
    """``--fd w`` over a case with float64 and one without: a ValueError traceback (exit 1) out of the second."""
    (tmp_path / "gradcheck_two.py").write_text(TWO_CASES)
    done = cli("check", tmp_path, "--fd", "w", "--json", tmp_path / "out.json")
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    fd = {(r["case"], r["dtype"], r["variable"]): r["fd"] for r in rows}
    assert fd[("both", "float64", "w")] == "fd 3/3 ok"
    assert fd[("float32_only", "float32", "w")] == "" and fd[("both", "float32", "w")] == ""
