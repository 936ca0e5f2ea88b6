"""A realistic package of hand-written ops, as a CI user's project would register them (written into pytester).

Layer norm, softmax cross-entropy, attention, conv1d via unfold and an embedding with repeated indices,
each with its hand-written backward; ``embedding-bug`` is the classic slip of the last one.
"""

OPS = '''
import torch
import torch.nn.functional as F

from gradcheck_kit import Graph, register


def _gen():
    return torch.Generator().manual_seed(0)


def layernorm_inputs():
    g = _gen()
    return {"x": torch.randn(6, 8, generator=g, requires_grad=True), "gamma": torch.randn(8, generator=g,
            requires_grad=True), "beta": torch.randn(8, generator=g, requires_grad=True),
            "target": torch.randn(6, 8, generator=g), "D": 8}


def layernorm(x, gamma, beta, target, D):
    mu = x.mean(1, keepdim=True)
    xc = x - mu
    var = (xc**2).mean(1, keepdim=True)
    rstd = (var + 1e-5) ** -0.5
    xhat = xc * rstd
    y = xhat * gamma + beta
    loss = (y * target).sum()
    return loss


LAYERNORM = """
dy = target
dgamma = (dy * xhat).sum(0)
dbeta = dy.sum(0)
dxhat = dy * gamma
drstd = (dxhat * xc).sum(1, keepdim=True)
dvar = drstd * -0.5 * (var + 1e-5) ** -1.5
dxc = dxhat * rstd + dvar * 2 * xc / D
dmu = -dxc.sum(1, keepdim=True)
dx = dxc + dmu / D
"""


def xent_inputs():
    g = _gen()
    return {"logits": torch.randn(5, 7, generator=g, requires_grad=True), "Y": torch.tensor([0, 3, 3, 6, 1]), "B": 5}


def xent(logits, Y, B):
    logp = F.log_softmax(logits, 1)
    picked = logp[range(B), Y]
    loss = -picked.mean()
    return loss


XENT = """
dpicked = torch.full_like(picked, -1.0 / B)
dlogp = torch.zeros_like(logp)
dlogp[range(B), Y] = dpicked
dlogits = dlogp - logp.exp() * dlogp.sum(1, keepdim=True)
"""


def attention_inputs():
    g = _gen()
    q, k, v = (torch.randn(4, 8, generator=g, requires_grad=True) for _ in range(3))
    return {"q": q, "k": k, "v": v, "target": torch.randn(4, 8, generator=g), "scale": 8**-0.5}


def attention(q, k, v, target, scale):
    scores = q @ k.T * scale
    att = scores.softmax(1)
    out = att @ v
    loss = (out * target).sum()
    return loss


ATTENTION = """
dout = target
datt = dout @ v.T
dv = att.T @ dout
dscores = att * (datt - (datt * att).sum(1, keepdim=True))
dq = dscores @ k * scale
dk = dscores.T @ q * scale
"""


def conv_inputs():
    g = _gen()
    return {"x": torch.randn(2, 3, 10, generator=g, requires_grad=True),
            "w": torch.randn(4, 3, 3, generator=g, requires_grad=True), "target": torch.randn(2, 4, 8, generator=g)}


def conv1d(x, w, target):
    cols = x.unfold(2, 3, 1)
    y = torch.einsum("bclk,ock->bol", cols, w)
    loss = (y * target).sum()
    return loss


CONV1D = """
dy = target
dw = torch.einsum("bclk,bol->ock", cols, dy)
dcols = torch.einsum("bol,ock->bclk", dy, w)
dx = torch.zeros_like(x)
for i in range(3):
    dx[:, :, i : i + dcols.shape[2]] += dcols[:, :, :, i]
"""


def embedding_inputs():
    g = _gen()
    return {"C": torch.randn(6, 4, generator=g, requires_grad=True), "idx": torch.tensor([1, 4, 1, 1, 0]),
            "target": torch.randn(5, 4, generator=g)}


def embedding(C, idx, target):
    emb = C[idx]
    loss = (emb * target).sum()
    return loss


EMBEDDING = """
demb = target
dC = torch.zeros_like(C)
dC.index_add_(0, idx, demb)
"""
EMBEDDING_BUG = EMBEDDING.replace("dC.index_add_(0, idx, demb)", "dC[idx] += demb")

BOTH = ("float32", "float64")
register("layernorm", Graph("layernorm", layernorm, layernorm_inputs), LAYERNORM, dtypes=BOTH)
register("softmax-xent", Graph("xent", xent, xent_inputs), XENT, dtypes=BOTH)
register("attention", Graph("attention", attention, attention_inputs), ATTENTION, dtypes=BOTH)
register("attention-bf16", Graph("attention", attention, attention_inputs), ATTENTION, dtypes=("bfloat16",),
         rule="reference")
register("conv1d-unfold", Graph("conv1d", conv1d, conv_inputs), CONV1D, dtypes=BOTH)
register("embedding", Graph("embedding", embedding, embedding_inputs), EMBEDDING, dtypes=BOTH)
register("embedding-bug", Graph("embedding", embedding, embedding_inputs), EMBEDDING_BUG)
'''

TESTS = """
import pytest
from gradcheck_kit import Graph
from gradcheck_ops import EMBEDDING, EMBEDDING_BUG, embedding, embedding_inputs

GRAPH = Graph("embedding", embedding, embedding_inputs)


def test_the_bug_is_caught(gradcheck):
    report = gradcheck(GRAPH, EMBEDDING_BUG, fail=False)
    assert not report.passed and report["C"].status == "mismatch"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding(gradcheck, dtype):
    gradcheck(GRAPH, EMBEDDING, dtypes=[dtype])
"""
