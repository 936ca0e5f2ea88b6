"""Exercise 2: the cross-entropy backward in one expression.

Write ``dlogits`` directly from ``logits`` and ``Yb`` (math on paper first), without going through
``logprobs``, ``probs``, ... The forward's locals, ``torch`` and ``F`` are available.
"""
# ruff: noqa: F821 - the names are the forward's locals, supplied by the harness

dlogits = None  # TODO

cmp("logits", dlogits, logits)
