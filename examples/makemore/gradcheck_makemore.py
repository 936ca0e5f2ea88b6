"""The makemore part 4 exercises as gradcheck-kit cases: ``gradcheck-kit check examples/makemore``."""

from pathlib import Path

from model import forward, make_inputs

from gradcheck_kit import Graph, register

HERE = Path(__file__).resolve().parent
MAKEMORE = Graph("makemore", forward, make_inputs)
# The notebook's cmp() uses torch.allclose defaults (rtol=1e-5, atol=1e-8): float32's default
# atol=1e-5 would hide mistakes in gradients as small as dbndiff2's.

register("makemore-ex1", MAKEMORE, HERE / "backward_ex1.py", tolerance="makemore")
register("makemore-ex2", MAKEMORE, HERE / "backward_ex2.py", variables=("logits",), tolerance="makemore")
register("makemore-ex3", MAKEMORE, HERE / "backward_ex3.py", variables=("hprebn",), tolerance="makemore")
