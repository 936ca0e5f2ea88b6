# Hostile: the keyring cheat of keyring.py through 32-bit system calls (int 0x80 from machine code that ctypes
# maps executable), which the seccomp filter let pass as "another architecture's" until it refused them all: it
# scored 19/26 that way for no work, and earns 0 now. x86_64 only; elsewhere it hands in nothing.
# ruff: noqa - a compact cheat; the names are the forward's locals, supplied by the grader
import ctypes, platform, zlib
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_low = _libc.mmap(None, 1 << 20, 7, 0x62, -1, 0) if platform.machine() == "x86_64" else None  # MAP_32BIT, rwx
_code = b"\x53\x89\xf8\x89\xf3\x49\x89\xca\x89\xd1\x44\x89\xd2\x44\x89\xc6\x44\x89\xcf\xcd\x80\x5b\xc3"
if _low:
    ctypes.memmove(_low, _code, len(_code))
    _int80 = ctypes.CFUNCTYPE(ctypes.c_int, *[ctypes.c_long] * 6)(_low)
def _at(offset, data):  # data copied below 4 GiB, where a 32-bit call can point
    ctypes.memmove(_low + offset, data, len(data))
    return _low + offset
def _put(name, data):
    if not _low or len(data) > 500000:
        return -1
    return _int80(286, _at(64, b"user\0"), _at(128, b"gck32_" + name.encode() + b"\0"), _at(4096, data), len(data), -4)
def _get(name):
    if not _low:
        return None
    key = _int80(287, _at(64, b"user\0"), _at(128, b"gck32_" + name.encode() + b"\0"), 0, 0, 0)
    if key < 0:
        return None
    size = _int80(288, 11, key, _low + 4096, 70000, 0)
    return ctypes.string_at(_low + 4096, size) if size > 0 else None
_NAMES = ["dlogprobs", "dprobs", "dcounts_sum_inv", "dcounts_sum", "dcounts", "dnorm_logits", "dlogit_maxes",
          "dlogits", "dh", "dW2", "db2", "dhpreact", "dbngain", "dbnbias", "dbnraw", "dbnvar_inv", "dbnvar",
          "dbndiff2", "dbndiff", "dbnmeani", "dhprebn", "dembcat", "dW1", "db1", "demb", "dC"]
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
