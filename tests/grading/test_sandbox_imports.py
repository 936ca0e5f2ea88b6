"""The standard library and the installed packages import in the sandbox, as on the host (a tester found
``import statistics`` failing with "No module named": the grader runs as root, its Python lives under pyenv's
``/root``, mode 700, and the children run as uid 65534, who cannot search it), while what the sandbox refuses
(new processes, TCP) stays refused once the modules that ask for it import."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from grading_support import ROOT, SAMPLES, Run, grade_command

from gradcheck_kit.grading import namespaces
from gradcheck_kit.grading.confine import NOBODY

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
STDLIB_USE = """import statistics, fractions, decimal, shlex, logging.config, zoneinfo, sqlite3, pdb
print("imported", statistics.mean([1, 2]), fractions.Fraction(1, 3), decimal.Decimal(1) / 7, shlex.split("a b"))
"""
PLOTS = """import matplotlib.pyplot as plt
plt.plot([1, 2])
plt.savefig("loss.png")
print("plotted")
"""
ESCAPES = """import os, pty, socket, subprocess, multiprocessing
def attempt(name, action):
    try:
        result = action()
    except Exception as error:
        print("refused", name, type(error).__name__)
    else:
        print("refused" if result not in (0, None) else "ran", name, result)
def connect():
    with socket.create_connection(("127.0.0.1", 9), timeout=1):
        pass
attempt("subprocess", lambda: subprocess.run(["true"]).returncode)
attempt("os.system", lambda: os.system("true"))
attempt("pty.fork", lambda: pty.fork() and None)
attempt("multiprocessing", lambda: multiprocessing.Process(target=print).start())
attempt("tcp", connect)
"""
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def _exercise4_notebook(folder: Path) -> Path:
    """The shipped solution with ``import statistics`` in its Exercise 4 cell, after the header (the tester's
    notebook), used in the loop's printing."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    (cell,) = [cell for cell in notebook.cells if "exercise4" in cell.metadata.get("tags", [])]
    header = "# Train the MLP neural net with your own backward pass\n"
    printing = 'print(f"{i:7d}/{max_steps:7d}: {loss.item():.4f}")'
    assert cell.source.count(header) == cell.source.count(printing) == 1
    cell.source = cell.source.replace(header, header + "import statistics\n").replace(
        printing, printing + "\n            print(statistics.mean(lossi or [0.0]))"
    )
    path = folder / "statistics_in_exercise4.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    folder = tmp_path_factory.mktemp("imports")
    correct = (SAMPLES / "correct.py").read_text()
    sources = {"stdlib.py": STDLIB_USE, "escapes.py": ESCAPES, **({"plots.py": PLOTS} if HAS_MATPLOTLIB else {})}
    for name, prefix in sources.items():
        (folder / name).write_text(prefix + correct)
    scripts = folder / "out"
    run = Run(scripts, grade_command(scripts, sorted(folder.glob("*.py")), "--timeout", "10", timeout=300))
    notebooks = folder / "out_parts"
    notebook = _exercise4_notebook(folder)
    parts = ("--assignment", str(PARTS), "--timeout", "30", "--memory", "1024", "--jobs", "1")
    return run, Run(notebooks, grade_command(notebooks, [notebook], *parts, timeout=300))


def test_standard_library_modules_import_in_the_sandbox(graded: tuple[Run, Run]) -> None:
    run, _ = graded
    row = run.gradebook["stdlib.py"]
    assert (row["score"], row["status"]) == ("26", "graded"), row["message"]
    assert "imported 1.5 1/3 0.142857" in run.results("stdlib.py")["output"]


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_matplotlib_imports_and_plots_in_the_workdir(graded: tuple[Run, Run]) -> None:
    run, _ = graded
    row = run.gradebook["plots.py"]
    assert (row["score"], row["status"]) == ("26", "graded"), row["message"]
    output = run.results("plots.py")["output"]
    assert "plotted" in output and "Error" not in output, output


def test_an_exercise4_cell_importing_statistics_earns_full_marks(graded: tuple[Run, Run]) -> None:
    _, run = graded
    row = run.gradebook["statistics_in_exercise4.ipynb"]
    assert (row["score"], row["max_score"], row["exercise4"]) == ("37", "37", "7"), row["message"]


def test_processes_and_tcp_stay_refused_once_their_modules_import(graded: tuple[Run, Run]) -> None:
    run, _ = graded
    row = run.gradebook["escapes.py"]
    assert (row["score"], row["status"]) == ("26", "graded"), row["message"]
    output = run.results("escapes.py")["output"]
    for name in ("subprocess", "os.system", "pty.fork", "multiprocessing"):
        assert f"refused {name}" in output
    assert "ran " not in output


@pytest.mark.skipif(not namespaces.available(), reason="a mount namespace needs root on Linux x86-64/arm64")
def test_expose_brings_only_the_given_paths_within_reach(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "lib").mkdir(parents=True)
    (closed / "lib" / "module.py").write_text("x = 1\n")
    (closed / "secret.txt").write_text("not for the child\n")
    closed.chmod(0o700)
    assert _in_child(lambda: _reads_as_nobody(closed, expose=False)) == 1
    assert _in_child(lambda: _reads_as_nobody(closed, expose=True)) == 0


@pytest.mark.skipif(not namespaces.available(), reason="a mount namespace needs root on Linux x86-64/arm64")
def test_expose_leaves_a_folder_holding_the_workdirs(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "lib").mkdir(parents=True)
    closed.chmod(0o700)
    paths = [str(closed / "lib")]
    assert _in_child(lambda: 0 if namespaces.expose(paths, NOBODY, str(closed / "workdirs")) == [] else 1) == 0


def _reads_as_nobody(closed: Path, expose: bool) -> int:
    """0 when, after ``expose`` (or not) and dropping to NOBODY, the child reads ``lib/module.py`` and cannot
    reach ``secret.txt``; 1 when it cannot read the module; 2 when it reaches the secret."""
    if expose:
        assert namespaces.expose([str(closed / "lib")], NOBODY, tempfile.gettempdir())
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    try:
        (closed / "lib" / "module.py").read_text()
    except OSError:
        return 1
    return 2 if (closed / "secret.txt").exists() else 0


def _in_child(action: Callable[[], int]) -> int:
    """The exit status of ``action()`` run in a forked child (its mounts and uid die with it)."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(action())
        except BaseException:  # noqa: BLE001 - any failure is a status the test reads
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


OPTIMIZER = """optimizer = torch.optim.SGD([C, W1], lr=0.1)
optimizer.zero_grad()
print("optimizer", type(optimizer).__name__)
"""


def test_a_submission_building_an_optimizer_is_graded(tmp_path: Path) -> None:
    """``torch.optim.SGD(...)`` imports torch's compiler, which made a cache folder where the child writes plain
    files only (PermissionError: .../torchinductor_uid_65534), then choked on the refusing function the sandbox put
    in place of several torch functions at once ('Duplicate torch object'): a right Exercise 1 with the lecture's
    optimizer line was an error. It is graded, 26/26, the optimizer built."""
    submission = tmp_path / "optimizer.py"
    submission.write_text((SAMPLES / "correct.py").read_text() + OPTIMIZER)
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    row = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()[1].split(",")
    assert row[1:4] == ["26", "26", "graded"], row
    output = (tmp_path / "out" / "optimizer" / "results.json").read_text()
    assert "optimizer SGD" in output, output
