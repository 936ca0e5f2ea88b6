# Hostile (found by a tester): forges a commit whose dtype is a JSON list, which the grader once looked up as a
# dict key (TypeError: a 'grader-error', blamed on the grader). Earns the 1 gradient handed in before.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
from gradcheck_kit.grading.channel import write_frame

write_frame(3, {"op": "commit", "variable": "logprobs", "reply": False, "kind": "tensor", "dtype": [], "shape": [1]})
