"""The makemore part 4 exercises as gradcheck-kit cases: ``gradcheck-kit check examples/makemore``."""

from pathlib import Path

from model import forward, make_inputs

from gradcheck_kit import Graph, register

HERE = Path(__file__).resolve().parent
MAKEMORE = Graph("makemore", forward, make_inputs)
# The default tolerance is scale-aware (atol a fraction of each gradient's scale), so mistakes in
# gradients as small as dbndiff2's (~3e-4) fail without naming a preset.

register("makemore-ex1", MAKEMORE, HERE / "backward_ex1.py")
register("makemore-ex2", MAKEMORE, HERE / "backward_ex2.py", variables=("logits",))
register("makemore-ex3", MAKEMORE, HERE / "backward_ex3.py", variables=("hprebn",))
