"""Exercise 3: the batchnorm backward in one formula, from ``dhpreact`` straight to ``dhprebn``.

``dhpreact`` comes from the Exercise 2 ``dlogits`` through the second layer and the tanh.
Runs in a namespace holding the forward's locals, ``torch``, ``F`` and a no-op ``cmp``.
"""
# ruff: noqa: F821 - the names are the forward's locals, supplied by the harness

dlogits = F.softmax(logits, 1)
dlogits[range(n), Yb] -= 1
dlogits /= n
dh = dlogits @ W2.T
dhpreact = (1.0 - h**2) * dh

dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))

cmp("hprebn", dhprebn, hprebn)
