# Hostile: writes a frame header of 60,000 '[' to the grader's channel itself. Python's JSON reader gives up on such
# nesting with a RecursionError, which the grader took for its own failure: a 'grader-error' row ("not the student's
# fault: re-grade it"), with the zygote's report of the child left unread. Now it broke the channel; earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import os
import struct

header = b"[" * 60000
os.write(3, struct.pack(">I", len(header)) + header)
