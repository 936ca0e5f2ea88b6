# Hostile: autograd without the engine. The original grad-mode switch is fetched from torch.fx's table of
# side-effectful functions (or the refusing wrapper's closure), grad mode switched back on, the forward recomputed,
# and autograd's own backward nodes (grad_fn, next_functions) called one by one. Before the switch was dropped from
# every table that held it, this earned 10 (the 7 parameters bit-exact), unflagged; now it earns 3 and is flagged.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import sys

tables = sys.modules["torch.fx.node"]._side_effectful_functions
switch = next(f for f in tables if getattr(f, "__name__", "") == "_set_grad_" + "enabled")
switch(True)
P = {
    k: v.detach().clone().requires_grad_()
    for k, v in dict(C=C, W1=W1, b1=b1, W2=W2, b2=b2, bngain=bngain, bnbias=bnbias).items()
}
s = dict(P)
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
loss_ = -s["logprobs"][range(n), Yb].mean()
# identity nodes at every named tensor, so each one's gradient can be read where it flows
order, seen = [], set()


def visit(node):
    if node is None or node in seen:
        return
    seen.add(node)
    for nxt, _ in node.next_functions:
        visit(nxt)
    order.append(node)


visit(loss_.grad_fn)
grads = {loss_.grad_fn: [torch.ones(())]}
shapes = {t.grad_fn: t.shape for k, t in s.items() if k not in P}
leaf = {}
for node in reversed(order):
    incoming = grads.get(node)
    if incoming is None:
        continue
    if hasattr(node, "variable"):
        leaf[id(node.variable)] = incoming[0].sum_to_size(node.variable.shape)
        continue
    if node in shapes:
        incoming = [incoming[0].sum_to_size(shapes[node])] + incoming[1:]
    outs = node(*incoming)
    outs = outs if isinstance(outs, tuple) else (outs,)
    for (nxt, nr), g in zip(node.next_functions, outs, strict=False):
        if nxt is None or g is None:
            continue
        slot = grads.setdefault(nxt, [None])
        while len(slot) <= nr:
            slot.append(None)
        slot[nr] = g if slot[nr] is None else slot[nr] + g
dC, dW1, db1, dW2, db2, dbngain, dbnbias = (
    leaf[id(P[k])].detach() for k in ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")
)
