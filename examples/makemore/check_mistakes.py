"""Each classic mistake from ``submissions/`` as its own case, to see what the report says about it.

Run ``gradcheck-kit check examples/makemore/check_mistakes.py``: every case fails on purpose (exit 1).
Named ``check_*`` so that ``gradcheck-kit check examples/makemore`` (which loads ``gradcheck_*.py``) stays green.
"""

from pathlib import Path

from model import forward, make_inputs

from gradcheck_kit import Graph, register

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
MAKEMORE = Graph("makemore", forward, make_inputs)

for path in sorted(SUBMISSIONS.glob("*.py")):
    if path.stem != "correct":
        register(f"mistake-{path.stem}", MAKEMORE, path)
