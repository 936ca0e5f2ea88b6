# Hostile: loops forever. Times out; earns 3 (dlogprobs and dprobs committed when read, dcounts_sum_inv as assigned).
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
while True:
    pass
