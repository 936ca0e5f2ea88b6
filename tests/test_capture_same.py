"""The instrumenting capture finds exactly what the old ``sys.settrace`` capture found.

``capture_expected.json`` was written by the tracer capture (commit 7a97753) from the graphs of
``capture_graphs.py``: makemore on the generated word list, the test suite's graphs, and the
rebinding, in-place, loop, helper, unpacking and branch cases, in float32 and float64. One entry was
changed on purpose since: a parameter changed in place under ``no_grad`` (``inplace-parameter``'s ``w``)
is no longer a problem, as autograd's ``w.grad`` is that of the parameter the loss used. And ``unpacking``'s
aliases (``c2 = c``, ``d = e = ...``) each keep their consumers: one name per autograd node gave them to the
last name only, so ``c`` had none and came first in backprop order.
"""

import copy
import json
import sys
from pathlib import Path

import pytest
import torch
from capture_graphs import GRAPHS, MAKEMORE, makemore, summary

from gradcheck_kit import capture

EXPECTED = json.loads((Path(__file__).parent / "capture_expected.json").read_text())
DTYPES = {"torch.float32": torch.float32, "torch.float64": torch.float64}


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    sys.path.insert(0, str(MAKEMORE))
    try:
        from data import generated_words
    finally:
        sys.path.remove(str(MAKEMORE))
    path = tmp_path_factory.mktemp("words") / "names.txt"
    path.write_text("\n".join(generated_words()))
    return path


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_capture_matches_the_tracer_capture(key, words):
    name, dtype = key.split("/")
    graph = makemore(words) if name == "makemore" else GRAPHS[name]()
    got = summary(capture(graph, "cpu", DTYPES[dtype]))
    expected = copy.deepcopy(EXPECTED[key])
    norms = [v.pop("grad_norm") for v in got["variables"]]
    expected_norms = [v.pop("grad_norm") for v in expected["variables"]]
    assert got["variables"] == expected["variables"]
    assert norms == pytest.approx(expected_norms, rel=1e-6)
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert got["namespace"] == expected["namespace"]
