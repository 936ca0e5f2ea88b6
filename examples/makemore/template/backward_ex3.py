"""Exercise 3: the batchnorm backward in one formula.

Bring ``dhpreact`` over from your Exercise 1 or 2 work, then write ``dhprebn`` in one expression of
``dhpreact``, ``bngain``, ``bnvar_inv``, ``bnraw`` and ``n``. The forward's locals, ``torch`` and ``F`` are available.
"""
# ruff: noqa: F821 - the names are the forward's locals, supplied by the harness

dhpreact = None  # TODO: from Exercise 1 or 2
dhprebn = None  # TODO

cmp("hprebn", dhprebn, hprebn)
