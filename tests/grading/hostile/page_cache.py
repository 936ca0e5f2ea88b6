# Hostile: the keyring cheat of keyring.py through the page cache, in plain Python (no ctypes). In the independent
# run it reads every gradient before assigning it (getting the reference copies), writes them as bits into the page
# cache (one bit per header file of torch's, which no process reads: evicted with posix_fadvise, or read), and touches
# them in place, so that the grader runs it again without references, where it reads the bits back with
# preadv(RWF_NOWAIT), which fails on a page that is not cached. It scored 6/26 for no work; the calls that read and
# reset the page cache are refused now (seccomp), and it earns 0.
# ruff: noqa - a compact cheat; the names are the forward's locals, supplied by the grader
import os, glob, struct
_FILES = sorted(glob.glob(os.path.join(os.path.dirname(torch.__file__), "include", "**", "*.h"), recursive=True))
_NAMES = ["dlogprobs", "dprobs", "dcounts_sum_inv", "dcounts_sum", "dcounts", "dnorm_logits", "dlogit_maxes",
          "dlogits", "dh", "dW2", "db2", "dhpreact", "dbngain", "dbnbias", "dbnraw", "dbnvar_inv", "dbnvar",
          "dbndiff2", "dbndiff", "dbnmeani", "dhprebn", "dembcat", "dW1", "db1", "demb", "dC"]
def _write(data):
    bits = [(byte >> i) & 1 for byte in struct.pack("<I", len(data)) + data for i in range(8)]
    for path, bit in zip(_FILES, bits + [0] * (len(_FILES) - len(bits))):
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if bit:
            os.pread(fd, 1, 0)
        os.close(fd)
def _bit(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return int(os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT) == 1)
    except OSError:
        return 0
    finally:
        os.close(fd)
def _read():
    def byte(k):
        return sum(_bit(_FILES[8 * k + i]) << i for i in range(8))
    size = struct.unpack("<I", bytes(byte(k) for k in range(4)))[0]
    return bytes(byte(4 + k) for k in range(min(size, len(_FILES) // 8 - 4)))
_got = {}
for _k in _NAMES:
    try:
        _got[_k] = globals()[_k]
    except KeyError:
        pass
if _got:  # run 1: references were handed over
    _blob, _room = b"", len(_FILES) // 8 - 4
    for _k, _v in sorted(_got.items(), key=lambda kv: kv[1].numel()):
        _raw = _v.contiguous().view(torch.uint8).numpy().tobytes()
        _item = struct.pack("<BH", _NAMES.index(_k), len(_raw) // 4) + _raw
        if len(_blob) + len(_item) <= _room:
            _blob += _item
        _v.mul_(1.0)
    _write(_blob)
else:  # run 2: no references; read them back
    _blob = _read()
    while len(_blob) >= 3:
        _i, _n = struct.unpack("<BH", _blob[:3])
        if _i >= len(_NAMES):
            break
        _got[_NAMES[_i]] = torch.frombuffer(bytearray(_blob[3 : 3 + 4 * _n]), dtype=torch.float32).clone()
        _blob = _blob[3 + 4 * _n :]
for _k, _v in _got.items():
    globals()[_k] = _v.reshape(globals()[_k[1:]].shape) if _k[1:] in globals() else _v
dlogprobs = _got.get("dlogprobs")
