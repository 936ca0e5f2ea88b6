# Hostile (found by a tester): computes nothing. In the independent run it reads every gradient before assigning
# it (getting the reference copies), keeps them in the uid's kernel keyring and touches them in place, so that the
# grader runs it again without references, where it reads them back. It scored 19/26; the keyring is refused now
# (seccomp), and it earns 0.
# ruff: noqa - a compact cheat, kept as it was found; the names are the forward's locals, supplied by the grader
import ctypes, zlib
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NAMES = ["dlogprobs", "dprobs", "dcounts_sum_inv", "dcounts_sum", "dcounts", "dnorm_logits", "dlogit_maxes",
          "dlogits", "dh", "dW2", "db2", "dhpreact", "dbngain", "dbnbias", "dbnraw", "dbnvar_inv", "dbnvar",
          "dbndiff2", "dbndiff", "dbnmeani", "dhprebn", "dembcat", "dW1", "db1", "demb", "dC"]
def _put(name, data):
    return _libc.syscall(248, b"user", b"gck_" + name.encode(), data, len(data), -4)
def _get(name):
    key = _libc.syscall(249, b"user", b"gck_" + name.encode(), None, 0)
    if key < 0:
        return None
    buf = ctypes.create_string_buffer(70000)
    size = _libc.syscall(250, 11, key, buf, 70000)
    return buf.raw[:size] if size > 0 else None
_got = {}
for _k in _NAMES:
    try:
        _got[_k] = globals()[_k]
    except KeyError:
        pass
if _got:  # run 1: references were handed over
    for _k, _v in sorted(_got.items(), key=lambda kv: kv[1].numel()):
        _meta = repr((list(_v.shape), str(_v.dtype))).encode()
        _put(_k, zlib.compress(_meta + b"|" + bytes(_v.contiguous().view(torch.uint8).flatten().tolist()), 9))
        _v.mul_(1.0)
else:  # run 2: no references; read them back
    for _k in _NAMES:
        _raw = _get(_k)
        if _raw is not None:
            _meta, _, _data = zlib.decompress(_raw).partition(b"|")
            _shape, _dtype = eval(_meta)
            _got[_k] = torch.frombuffer(bytearray(_data), dtype=getattr(torch, _dtype.split(".")[1])).reshape(_shape).clone()
for _k, _v in _got.items():
    globals()[_k] = _v
dlogprobs = _got.get("dlogprobs")
