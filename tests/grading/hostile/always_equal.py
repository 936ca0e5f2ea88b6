# Hostile: hands in objects whose __eq__ is always True, one of them a Tensor subclass. Earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
class Liar(torch.Tensor):
    def __eq__(self, other):
        return True


class Impostor:
    shape = (32, 1)

    def __eq__(self, other):
        return True


dcounts_sum = Impostor()
dcounts = torch.zeros_like(counts).as_subclass(Liar)
