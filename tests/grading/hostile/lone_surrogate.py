# Hostile: prints and raises text with a lone surrogate, which UTF-8 cannot encode. Earns 3.
# ruff: noqa: F821 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
print("\udcff")
dcounts = int("bad \udcff text")
