# Hostile: recomputes part of the forward and calls backward. Autograd is refused; earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
W2.requires_grad_()
again = (h @ W2 + b2).sum()
again.backward()
dW2 = W2.grad
