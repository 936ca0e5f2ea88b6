"""Registers the student template's three exercises as cases (not named gradcheck_*.py, so a check of the
whole example folder leaves the unfinished template out).

    gradcheck-kit check examples/makemore/template/check_template.py
"""

import sys
from pathlib import Path

from gradcheck_kit import Graph, register

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from model import forward, make_inputs  # noqa: E402 - model.py is in the folder above

MAKEMORE = Graph("makemore", forward, make_inputs)

register("makemore-template-ex1", MAKEMORE, HERE / "backward_ex1.py")
register("makemore-template-ex2", MAKEMORE, HERE / "backward_ex2.py", variables=("logits",))
register("makemore-template-ex3", MAKEMORE, HERE / "backward_ex3.py", variables=("hprebn",))
