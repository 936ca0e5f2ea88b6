# Hostile: closes the pipe the grader answers its commits on, then uses a gradient it has not handed in yet. The
# grader's answer met a broken pipe, which it took for the sandbox's failure: the run was thrown away, run again on a
# freshly spawned zygote, and the row said 'grader-error ... twice (not the submission's doing: re-grade it)'. Now it
# broke the channel; earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import os

os.close(4)
dcounts_sum = dcounts_sum_inv * 2
