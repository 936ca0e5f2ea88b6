# Hostile: writes garbage onto the grader's channel. Earns the 3 gradients handed in before.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import os

os.write(3, b"\xff" * 64)
dcounts = counts_sum_inv * dprobs
