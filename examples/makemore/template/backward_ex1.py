"""Exercise 1: backprop through the whole forward pass by hand, one variable at a time.

Replace each ``None`` with the gradient of the loss with respect to that variable, working backwards
from ``logprobs`` to ``C``. The forward's locals (C, W1, ..., logprobs, n, Xb, Yb), ``torch`` and ``F``
are available; the ``cmp`` lines are the notebook's and do nothing here: gradcheck-kit does the comparing.
"""
# ruff: noqa: F821 - the names are the forward's locals, supplied by the harness

dlogprobs = None  # TODO
dprobs = None  # TODO
dcounts_sum_inv = None  # TODO
dcounts_sum = None  # TODO
dcounts = None  # TODO
dnorm_logits = None  # TODO
dlogit_maxes = None  # TODO
dlogits = None  # TODO
dh = None  # TODO
dW2 = None  # TODO
db2 = None  # TODO
dhpreact = None  # TODO
dbngain = None  # TODO
dbnbias = None  # TODO
dbnraw = None  # TODO
dbnvar_inv = None  # TODO
dbnvar = None  # TODO
dbndiff2 = None  # TODO
dbndiff = None  # TODO
dbnmeani = None  # TODO
dhprebn = None  # TODO
dembcat = None  # TODO
dW1 = None  # TODO
db1 = None  # TODO
demb = None  # TODO
dC = None  # TODO

cmp("logprobs", dlogprobs, logprobs)
cmp("probs", dprobs, probs)
cmp("counts_sum_inv", dcounts_sum_inv, counts_sum_inv)
cmp("counts_sum", dcounts_sum, counts_sum)
cmp("counts", dcounts, counts)
cmp("norm_logits", dnorm_logits, norm_logits)
cmp("logit_maxes", dlogit_maxes, logit_maxes)
cmp("logits", dlogits, logits)
cmp("h", dh, h)
cmp("W2", dW2, W2)
cmp("b2", db2, b2)
cmp("hpreact", dhpreact, hpreact)
cmp("bngain", dbngain, bngain)
cmp("bnbias", dbnbias, bnbias)
cmp("bnraw", dbnraw, bnraw)
cmp("bnvar_inv", dbnvar_inv, bnvar_inv)
cmp("bnvar", dbnvar, bnvar)
cmp("bndiff2", dbndiff2, bndiff2)
cmp("bndiff", dbndiff, bndiff)
cmp("bnmeani", dbnmeani, bnmeani)
cmp("hprebn", dhprebn, hprebn)
cmp("embcat", dembcat, embcat)
cmp("W1", dW1, W1)
cmp("b1", db1, b1)
cmp("emb", demb, emb)
cmp("C", dC, C)
