# Hostile: writes its own commit to the grader's channel: a float32 tensor of shape [0, 2**39, 2**39, 2**39], no
# element and no byte, which passed every check of the frame, but torch refuses to lay it out ("Stride calculation
# overflowed"): a RuntimeError in the grader, so a 'grader-error' row blamed on the grader. Now it broke the channel;
# earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import json
import os
import struct

shape = [0, 2**39, 2**39, 2**39]
commit = {"op": "commit", "variable": "probs", "reply": False, "kind": "tensor", "dtype": "float32", "shape": shape}
header = json.dumps({**commit, "nbytes": 0}).encode()
os.write(3, struct.pack(">I", len(header)) + header)
