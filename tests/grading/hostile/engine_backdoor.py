# Hostile: autograd through the back door: recomputes the forward from the parameters and asks a fresh
# torch._C._ImperativeEngine for every intermediate's gradient (no backward(), no autograd.grad). Grad mode is off
# and the engine closed in the child, so the recomputation has no graph; flagged for review; earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import contextlib

with contextlib.suppress(Exception):
    torch._C._set_grad_enabled(True)
leaves = {name: t.detach().clone().requires_grad_() for name, t in dict(C=C, W1=W1, b1=b1, W2=W2, b2=b2).items()}
leaves.update(bngain=bngain.detach().clone().requires_grad_(), bnbias=bnbias.detach().clone().requires_grad_())
s = dict(leaves)
s["emb"] = s["C"][Xb]
s["embcat"] = s["emb"].view(s["emb"].shape[0], -1)
s["hprebn"] = s["embcat"] @ s["W1"] + s["b1"]
s["bnmeani"] = 1 / n * s["hprebn"].sum(0, keepdim=True)
s["bndiff"] = s["hprebn"] - s["bnmeani"]
s["bndiff2"] = s["bndiff"] ** 2
s["bnvar"] = 1 / (n - 1) * (s["bndiff2"]).sum(0, keepdim=True)
s["bnvar_inv"] = (s["bnvar"] + 1e-5) ** -0.5
s["bnraw"] = s["bndiff"] * s["bnvar_inv"]
s["hpreact"] = s["bngain"] * s["bnraw"] + s["bnbias"]
s["h"] = torch.tanh(s["hpreact"])
s["logits"] = s["h"] @ s["W2"] + s["b2"]
s["logit_maxes"] = s["logits"].max(1, keepdim=True).values
s["norm_logits"] = s["logits"] - s["logit_maxes"]
s["counts"] = s["norm_logits"].exp()
s["counts_sum"] = s["counts"].sum(1, keepdims=True)
s["counts_sum_inv"] = s["counts_sum"] ** -1
s["probs"] = s["counts"] * s["counts_sum_inv"]
s["logprobs"] = s["probs"].log()
loss = -s["logprobs"][range(n), Yb].mean()
names = list(s)
grads = torch._C._ImperativeEngine().run_backward(
    (loss,), (torch.ones_like(loss),), False, False, tuple(s[k] for k in names), False, False
)
for name, grad in zip(names, grads, strict=True):
    globals()["d" + name] = grad
