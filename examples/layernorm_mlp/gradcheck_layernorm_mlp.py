"""Check the reference solution before grading with it: ``gradcheck-kit check examples/layernorm_mlp``."""

from pathlib import Path

from model import forward, make_inputs

from gradcheck_kit import Graph, register

register("layernorm-mlp", Graph("layernorm-mlp", forward, make_inputs), Path(__file__).with_name("solution.py"))
