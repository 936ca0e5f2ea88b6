"""Files as Windows writes them: Windows PowerShell's ``>`` (``jupyter nbconvert --to script --stdout hw.ipynb >
hw.py``) and Notepad's "Unicode" save UTF-16 with a byte-order mark. Such a .py was an error for every part
("SyntaxError: source code string cannot contain null bytes"). The end-to-end test runs `gradcheck-kit grade` in its
own process."""

from __future__ import annotations

import codecs

import nbformat
import pytest
from grading_support import ROOT, SAMPLES, Run, grade_command
from nbconvert import PythonExporter

from gradcheck_kit.grading.source import decode

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("encodings")
    correct = (SAMPLES / "correct.py").read_text()
    (folder / "utf16le.py").write_bytes(correct.encode("utf-16"))  # Python writes the native (little-endian) BOM
    (folder / "utf16be.py").write_bytes(codecs.BOM_UTF16_BE + correct.encode("utf-16-be"))
    text, _ = PythonExporter().from_notebook_node(nbformat.read(SOLUTION, as_version=4))
    (folder / "export_utf16.py").write_bytes(text.encode("utf-16"))
    out = folder / "out"
    return Run(out, grade_command(out, sorted(folder.glob("*.py")), "--assignment", str(PARTS), timeout=600))


@pytest.mark.parametrize("name", ["utf16le.py", "utf16be.py"])
def test_a_utf16_py_with_its_byte_order_mark_is_graded(graded: Run, name: str) -> None:
    row = graded.gradebook[name]
    assert (row["status"], row["exercise1"], row["exercise2"], row["exercise3"]) == ("graded", "26", "2", "2"), row


def test_a_notebook_exported_to_py_by_powershell_is_graded_like_the_notebook(graded: Run) -> None:
    row = graded.gradebook["export_utf16.py"]
    assert (row["status"], row["score"], row["exercise4"]) == ("graded", "37", "7"), row["message"]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\xef\xbb\xbfdW1 = 1", "dW1 = 1"),
        (b"# r\xe9sum\xe9\ndW1 = 1", "# r\ufffdsum\ufffd\ndW1 = 1"),
        ("dW1 = 1".encode("utf-32"), "dW1 = 1"),
    ],
)
def test_a_file_is_read_by_its_byte_order_mark_else_as_utf8(data: bytes, text: str) -> None:
    assert decode(data) == text
