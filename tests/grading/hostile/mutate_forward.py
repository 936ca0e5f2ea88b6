# Hostile: mutates forward tensors in place; the grader's reference is untouched. Earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
for tensor in (probs, counts, counts_sum_inv, logits, h, W2, C):
    tensor.zero_()
dcounts = counts_sum_inv * dprobs
