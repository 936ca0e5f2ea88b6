# Hostile: ignores SIGXCPU, lowers its own CPU hard limit to one second, and spins. The kernel's SIGKILL at that
# limit read as a run the sandbox lost: it was run a second time, then reported 'crashed' (signal 9), not 'timeout'.
# Setting a limit is refused now; it runs into the time limit like any endless loop and earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import contextlib
import resource
import signal

signal.signal(signal.SIGXCPU, signal.SIG_IGN)
with contextlib.suppress(OSError, ValueError):  # Python reads EPERM here as "not allowed to raise maximum limit"
    resource.setrlimit(resource.RLIMIT_CPU, (1, 1))
while True:
    pass
