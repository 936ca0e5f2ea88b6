# Hostile: hands in zeros for dlogprobs, then copies the reference it was given for the next line into its own
# dlogprobs in place. Earns 2 (dprobs, dcounts_sum_inv): no run without references ends with dlogprobs right.
# ruff: noqa: F821 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
peek = dlogprobs.clone()
dprobs = (1.0 / probs) * peek
dlogprobs.copy_(peek)
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
