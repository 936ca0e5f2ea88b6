# Hostile: walks frames and gc looking for reference gradients, reading .grad past the refusing
# property through torch's C getter; there are none to find. Earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import gc
import sys

grad_of = torch._C.TensorBase.grad.__get__
found = [obj for obj in gc.get_objects() if isinstance(obj, torch.Tensor) and grad_of(obj) is not None]
frame = sys._getframe()
while frame is not None:
    found += [v for v in frame.f_locals.values() if isinstance(v, torch.Tensor) and grad_of(v) is not None]
    frame = frame.f_back
dcounts = grad_of(found[0]) if found else torch.zeros_like(counts)
