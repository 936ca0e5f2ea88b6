# Hostile: looks for gradients in .grad instead of deriving them. .grad reads None (no backward ran); earns 3.
# ruff: noqa: F821 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
dW2 = W2.grad
