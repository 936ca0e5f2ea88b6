# Hostile (found by a tester): after one right gradient, forges 'altered' frames, each a 1 MiB tensor under a new
# name, until its time runs out; the grader kept every one (1.4 GB in 2 s). It keeps only graded names now.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
from gradcheck_kit.grading.channel import encode_value, write_frame

fields, payload = encode_value(torch.zeros(262144))
i = 0
while True:
    write_frame(3, {"op": "altered", "variable": f"v{i}", "line": 1, **fields}, payload)
    i += 1
