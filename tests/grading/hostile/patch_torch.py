# Hostile: patches torch.allclose, torch.equal and Tensor.__eq__ to always agree, then hands in zeros. Earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
dcounts = torch.zeros_like(counts)
dcounts_sum = torch.zeros_like(counts_sum)
