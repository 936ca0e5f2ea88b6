"""What ``grade`` was given, as submissions: files, per-student folders, or a Gradescope export.

Each submission gets a stable name: its file (or folder) name, or as much of its path as
tells it apart (``alice/hw.py`` and ``bob/hw.py``), so same-named files stay apart. A
folder is one submission: its notebook, or its one ``.py``, or the one ``.py`` that
assigns gradients. A folder given that holds several notebooks, or several ``.py`` and no
notebook, at its top is a class download (Canvas and Blackboard put every student's file in
one folder: ``smith_john_12345_hw4.ipynb``): a submission per file, and per subfolder
(``--single`` takes it as one student's). A folder of such folders, or a Gradescope "Export
Submissions" folder (with ``submission_metadata.yml``, whose students' names and emails reach
the gradebook), is a submission per subfolder. What zips, macOS, Jupyter and Python leave
beside the work (``__MACOSX/``, ``._name``, ``.DS_Store``, ``.ipynb_checkpoints/``,
``__pycache__/``) is never a file to grade nor a student.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cells import assigned
from .source import decode
from .submission import SubmissionError, is_notebook, read_regular

METADATA = "submission_metadata.yml"
GRADEBOOK = "gradebook.csv"
RESULTS_HEADER = "submission,score,max_score,status"
"""How the grader's gradebook begins (:func:`holds_results`)."""
"""What ``grade`` writes in its ``--out``: a folder holding it is an earlier run's results, never a student."""
GRADABLE = (".py", ".ipynb")
"""The extensions of files to grade, in any case (``Solution.PY``)."""
LEFTOVERS = frozenset({"__MACOSX", "__pycache__"})
"""Folders a zip made on macOS, or Python, leaves beside the work; hidden names are left out as well."""


@dataclass(frozen=True)
class Submission:
    """One thing to grade: the file, its stable name, who handed it in, and why it cannot be graded if so."""

    path: Path
    """A file, or a folder whose work :func:`choose` finds when the assignment is known."""
    name: str
    students: str = ""
    emails: str = ""

    @classmethod
    def of(cls, path: Path) -> Submission:
        """A file given alone: named by its file name."""
        return cls(path, path.name)


def collect(arguments: Sequence[Path], single: bool = False, out: Path | None = None) -> list[Submission]:
    """The submissions in ``arguments`` (files or folders), named relative to their common folder; when
    ``single``, each argument is one submission, never a class folder, whatever folders it nests. The ``out``
    folder, and any holding a gradebook, are outputs of ``grade`` (an --out inside the class folder), never
    students."""
    skip = frozenset() if out is None else {Path(os.path.abspath(out))}
    students = student_parents(arguments)
    found = [
        entry
        for argument in arguments
        for entry in _found_in(argument, single, skip, Path(os.path.abspath(argument)).parent in students)
    ]
    found = _with_people(_once(found))
    if not single and not any(_has_work(path) for path, _ in found):
        given = " in " + ", ".join(map(str, arguments)) if arguments else ""
        zips = "".join(_zips(path) for path in arguments if path.is_dir())
        raise ValueError(f"nothing to grade{given}: no .py file, notebook or folder of them{zips}")
    names = _names([path for path, _ in found])
    return [
        Submission(path, name, people.get("students", ""), people.get("emails", ""))
        for (path, people), name in zip(found, names, strict=True)
    ]


def student_parents(arguments: Sequence[Path]) -> set[Path]:
    """The folders whose entries were given as students, as a glob of the class (``class/*``) gives them: several
    arguments in one folder, one of them a file to grade or a folder with work at its top (a student's). Class
    folders given side by side (``sec1 sec2``) hold their work in subfolders."""
    given: dict[Path, list[Path]] = {}
    for argument in arguments:
        given.setdefault(Path(os.path.abspath(argument)).parent, []).append(argument)
    return {
        parent
        for parent, entries in given.items()
        if len(entries) > 1 and any(_gradable(entry) if not entry.is_dir() else _holds_work(entry) for entry in entries)
    }


def _found_in(argument: Path, single: bool, skip: Collection[Path], globbed: bool) -> list[tuple[Path, dict[str, str]]]:
    """The submissions one argument names, each with who handed it in when the export says; a ValueError for a
    path that names nothing. A link given is followed only to a class folder: a glob (``class/*``) gives a
    student's own links too, which must earn nothing. ``globbed``: other arguments share its folder, as a glob
    of the class gives them (:func:`student_parents`), so a folder of one folder of work is a student's, not a
    class of one."""
    _check_exists(argument)
    if single or not argument.is_dir():
        return [(argument, {})]
    folder = argument.resolve() if argument.is_symlink() else argument  # a link to a class folder: followed
    if (folder / METADATA).is_file():
        people = read_metadata((folder / METADATA).read_text(encoding="utf-8", errors="replace"))
        return [(student, people.get(student.name, {})) for student in _subfolders(folder, skip)]
    folders = _subfolders(folder, skip)
    if not _holds_work(folder) and folders and not (globbed and _work_one_level_down(folders)):
        return [(student, {}) for student in folders]
    if _is_download(folder) or (not globbed and a_file_beside_students(folder)):
        return [(path, {}) for path in _top_files(folder) + folders]
    return [(argument, {})]  # one student's: a link stays one, for choose() to refuse


def _work_one_level_down(folders: list[Path]) -> bool:
    """Whether ``folders``, the only folders of a folder with no work at its top, may be one student's work one
    level down (``alice/hw4/backprop.ipynb``, an upload unzipped into its own folder): a single folder holding work.
    Given alone, such a folder is a class of one student (``section/carol/hw4.py``)."""
    return len(folders) == 1 and bool(_work_files(folders[0]))


def not_a_submission(path: Path) -> bool:
    """Whether ``path``, given on the command line, is no student's work whatever it holds: a file that is not a
    .py or notebook (a README, a roster, a plot a glob picked up), or one of :data:`LEFTOVERS` (``__pycache__/``).
    A hidden name given is the caller's choice (a glob leaves them out), so it is graded."""
    return path.name in LEFTOVERS or (path.is_file() and not _gradable(path))


def other_files(folder: Path) -> list[Path]:
    """The files at the top of a class ``folder`` that are no submission (a student's PDF in a download, a roster):
    never graded, and worth naming, as a student who handed in only a PDF has no row."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not _gradable(path) and not _leftover(path.name) and path.name != METADATA
    )


def beside_a_notebook(folder: Path) -> list[Path]:
    """The .py files at the top of ``folder`` beside its one notebook: a student's helpers, or the other students'
    work in a class download where one student handed in a notebook (which the grader cannot tell apart)."""
    files = _top_files(folder) if folder.is_dir() else []
    notebooks = [path for path in files if is_notebook(path)]
    return [path for path in files if path not in notebooks] if len(notebooks) == 1 else []


def _has_work(path: Path) -> bool:
    """Whether ``path`` is a file to grade or a folder holding one: a class where none does is an empty download."""
    return _gradable(path) if not path.is_dir() else bool(_work_files(path))


def _is_download(folder: Path) -> bool:
    """Whether ``folder`` is a class download (Canvas, Blackboard: every student's file side by side): it holds
    several notebooks, or several .py files and no notebook, at its top. One notebook with .py files beside it is
    a student's work and helpers (Gradescope's upload folder)."""
    files = _top_files(folder)
    notebooks = [path for path in files if is_notebook(path)]
    return len(notebooks or files) > 1


def a_file_beside_students(folder: Path) -> bool:
    """Whether ``folder`` is a class download where one student handed in a file and the others zips, unzipped into
    folders: one file to grade at its top, and two or more folders of work that are no Python package (a student's
    helper package holds ``__init__.py``). It was graded as one submission, from one of the unzipped notebooks."""
    folders = _subfolders(folder, frozenset())
    working = [path for path in folders if _work_files(path) and not (path / "__init__.py").is_file()]
    return len(_top_files(folder)) == 1 and len(working) > 1


def _zips(folder: Path) -> str:
    """`` (it holds hw4.zip: unzip first)`` when ``folder`` holds zips (a class of zipped uploads), else nothing."""
    zips = sorted(path.name for path in folder.iterdir() if path.suffix.lower() == ".zip" and not _leftover(path.name))
    return f" (it holds {', '.join(zips[:3])}{', ...' if len(zips) > 3 else ''}: unzip first)" if zips else ""


def _with_people(found: list[tuple[Path, dict[str, str]]]) -> list[tuple[Path, dict[str, str]]]:
    """Each folder of a Gradescope export given one by one (``export/*``) with who handed it in, from the export's
    metadata, as when the export is given whole (the students and emails columns were empty)."""
    exports: dict[Path, dict[str, dict[str, str]]] = {}
    kept = []
    for path, people in found:
        metadata = path.parent / METADATA
        if not people and path.is_dir() and metadata.is_file():
            if path.parent not in exports:
                exports[path.parent] = read_metadata(metadata.read_text(encoding="utf-8", errors="replace"))
            people = exports[path.parent].get(path.name, {})
        kept.append((path, people))
    return kept


def _once(found: list[tuple[Path, dict[str, str]]]) -> list[tuple[Path, dict[str, str]]]:
    """``found`` with each path kept once, where first given: overlapping globs (``*.py hw*``) or a class folder
    given with one of its students grade each submission once, not refuse the run for two of one name."""
    seen: set[Path] = set()
    kept = []
    for path, people in found:
        if Path(os.path.abspath(path)) not in seen:
            seen.add(Path(os.path.abspath(path)))
            kept.append((path, people))
    return kept


def _check_exists(argument: Path) -> None:
    """A path given that names nothing is the caller's typo, never a student's empty submission: ValueError."""
    if not argument.exists():
        raise ValueError(f"no such file or folder: {argument}")


def read_metadata(text: str) -> dict[str, dict[str, str]]:
    """Submission folder -> ``{"students": ..., "emails": ...}`` from Gradescope's ``submission_metadata.yml``
    (PyYAML when installed, else a reader for that file's shape: a key per submission, a ``:submitters:``
    list of ``:name:`` / ``:email:`` entries)."""
    try:
        import yaml
    except ImportError:
        return _people(_read_shape(text))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    submitters = {
        str(key): [{str(k).lstrip(":"): str(v) for k, v in person.items()} for person in value.get(":submitters") or []]
        for key, value in (data or {}).items()
        if isinstance(value, dict)
    }
    return _people(submitters)


def _read_shape(text: str) -> dict[str, list[dict[str, str]]]:
    """Gradescope's metadata without a YAML library: a top-level key per submission, and the ``:field: value``
    lines of each ``- `` item of its ``:submitters:`` list."""
    submitters: dict[str, list[dict[str, str]]] = {}
    people: list[dict[str, str]] | None = None
    list_indent = -1
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped or stripped.startswith(("#", "---")):
            continue
        if indent == 0:
            people = submitters.setdefault(stripped.rstrip(":").strip("'\""), [])
            list_indent = -1
        elif stripped == ":submitters:":
            list_indent = indent
        elif list_indent >= 0 and people is not None:
            if stripped.startswith("- "):
                people.append({})
                stripped = stripped[2:]
            elif indent <= list_indent:
                list_indent = -1
                continue
            field, _, value = stripped.partition(": ")
            if people and value:
                people[-1][field.lstrip(":")] = value.strip().strip("'\"")
    return submitters


def _people(submitters: dict[str, list[dict[str, str]]]) -> dict[str, dict[str, str]]:
    return {
        key: {
            "students": "; ".join(person.get("name", "") for person in people),
            "emails": "; ".join(person.get("email", "") for person in people),
        }
        for key, people in submitters.items()
    }


def choose(path: Path, gradients: Collection[str]) -> Path:
    """The file to grade: ``path`` itself, or in a folder the notebook when there is one, else the one .py,
    else the one .py that assigns gradients; a SubmissionError says why none can be chosen."""
    if not path.is_dir():
        return _not_a_link(path)
    folder = _not_a_link(path)
    files = _work_files(folder)
    notebooks = [path for path in files if is_notebook(path)]
    candidates = notebooks or files
    if len(candidates) == 1:
        return _not_a_link(candidates[0])
    if not candidates:
        raise SubmissionError(f"{folder.name} holds no .py file or notebook{_zips(folder)}")
    listed = ", ".join(str(path.relative_to(folder)) for path in candidates[:10])
    if notebooks:  # not opened: which of several notebooks is the work is for the student to say
        raise SubmissionError(f"{folder.name} holds several notebooks ({listed}): hand in one")
    working = [path for path in candidates if _assigns(path, gradients)]
    if len(working) == 1:
        return _not_a_link(working[0])
    reason = "several of them assign" if working else "none of them assigns"
    raise SubmissionError(f"{folder.name} holds several files ({listed}) and {reason} the gradients: hand in one")


def _not_a_link(path: Path) -> Path:
    """``path``, unless it is a symbolic link: a student's link (a zip can hold one) could name the instructor's
    solution or a classmate's work, which the grader can read and the student cannot, and earn its points. The
    target is not said: it may be a path of the grader's machine."""
    if path.is_symlink():
        raise SubmissionError(f"{path.name} is a symbolic link: hand in the file itself, not a link to one")
    return path


def _assigns(path: Path, gradients: Collection[str]) -> bool:
    """Whether the .py file at ``path`` assigns any of ``gradients`` (an unreadable one does not)."""
    try:
        return bool(assigned(decode(read_regular(path)), gradients))
    except SubmissionError:
        return False


def _work_files(folder: Path) -> list[Path]:
    """The .py files and notebooks anywhere under ``folder``, but for leftovers and what lies in them."""
    return sorted(
        path
        for path in folder.rglob("*")
        if _gradable(path) and not any(map(_leftover, path.relative_to(folder).parts)) and path.is_file()
    )


def _leftover(name: str) -> bool:
    """Whether a file or folder named ``name`` is no student's work: hidden (``.ipynb_checkpoints``, macOS's
    ``._backprop.ipynb`` and ``.DS_Store``) or one of :data:`LEFTOVERS`."""
    return name.startswith(".") or name in LEFTOVERS


def _gradable(path: Path) -> bool:
    return path.suffix.lower() in GRADABLE


def _holds_work(folder: Path) -> bool:
    """Whether ``folder`` itself (not a subfolder) holds a file to grade."""
    return bool(_top_files(folder))


def _top_files(folder: Path) -> list[Path]:
    """The files to grade that ``folder`` itself holds (not its subfolders), in name order."""
    return sorted(path for path in folder.iterdir() if _gradable(path) and not _leftover(path.name) and path.is_file())


def _subfolders(folder: Path, skip: Collection[Path]) -> list[Path]:
    """The folders in ``folder`` that may be students': not leftovers, not ``skip``, not a run's results."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_dir()
        and not _leftover(path.name)
        and Path(os.path.abspath(path)) not in skip
        and not holds_results(path)
    )


def holds_results(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier run's results: a gradebook.csv with the grader's own header (a student's
    own gradebook.csv of another shape, handed in beside the work, leaves the folder a student's)."""
    try:
        with (folder / GRADEBOOK).open(encoding="utf-8", errors="replace") as file:
            return file.readline().startswith(RESULTS_HEADER)
    except OSError:
        return False


def _names(paths: list[Path]) -> list[str]:
    """Each path's shortest trailing part that no other path shares: the file or folder name, or
    ``alice/hw.py`` when several students hand in ``hw.py``. A link found in a folder keeps its own name: it
    is an invalid submission of its own, never a second name of its target."""
    parts = [Path(os.path.abspath(path)).parts for path in paths]
    depth = [1] * len(paths)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        counts = Counter(labels)
        clashing = [i for i, label in enumerate(labels) if counts[label] > 1 and depth[i] < len(parts[i])]
        if not clashing:
            return labels
        for i in clashing:
            depth[i] += 1
