# Hostile: calls os._exit(0) part-way: only what was handed in before counts. Earns 3 (2 read, 1 as assigned).
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import os

os._exit(0)
