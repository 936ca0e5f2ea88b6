# Hostile: autograd through TorchScript, which calls C++ directly, past every Python patch: a CompilationUnit
# switches grad mode back on, the forward is recomputed from the parameters, and another differentiates it with
# aten::grad (TorchScript's builtin for the original torch.autograd.grad, found in torch.jit's table of builtins).
# Before autograd was taken out of the child's dispatch this earned 26/26; now nothing records a graph: it earns 3
# and the run stops with an error.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
switch = torch.jit.CompilationUnit("def on(x: int):\n    torch.set_grad_enabled(True)\n    return x\n")
switch.on(1)
s = {k: v.detach().clone().requires_grad_() for k, v in dict(C=C, W1=W1, b1=b1, W2=W2, b2=b2).items()}
s.update(bngain=bngain.detach().clone().requires_grad_(), bnbias=bnbias.detach().clone().requires_grad_())
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
builtin_grad = next(f for f, name in torch.jit._builtins._builtin_ops if name == "aten::grad")
differentiate = torch.jit.CompilationUnit(
    "def d(y: Tensor, xs: List[Tensor]):\n    return builtin_grad([y], xs, allow_unused=True)\n"
)
for name, grad in zip(names, differentiate.d(loss, [s[k] for k in names]), strict=True):
    globals()["d" + name] = grad
