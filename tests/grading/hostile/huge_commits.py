# Hostile: writes its own commit frames for every other gradient, each claiming 8 MiB of data (sent from
# one 1 MiB buffer), to fill the grader's memory. The grader reads none of it; earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import json
import os
import struct

MIB = 1 << 20
chunk = bytes(MIB)
others = ["counts_sum", "counts", "norm_logits", "logit_maxes", "logits", "h", "W2", "b2", "hpreact", "bngain"]
for variable in others + ["bnbias", "bnraw", "bnvar_inv", "bnvar", "bndiff2", "bndiff", "bnmeani", "hprebn"]:
    header = {"op": "commit", "variable": variable, "reply": False, "kind": "tensor", "dtype": "float32"}
    header = json.dumps({**header, "shape": [2 * MIB], "nbytes": 8 * MIB}).encode()
    os.write(3, struct.pack(">I", len(header)) + header)
    for _ in range(8):
        os.write(3, chunk)
