# Hostile: floods stdout forever. Times out; earns 3 (dcounts_sum_inv was handed in as assigned, before the loop).
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
while True:
    print("x" * 10000)
