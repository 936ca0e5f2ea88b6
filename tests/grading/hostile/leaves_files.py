# Hostile: leaves files in /tmp, /dev/shm and its workdir, and a 5,000-deep folder tree, hoping they outlive it
# (filling the disk) or break the cleanup of the zygote that serves the next classmate. Nothing outlives it;
# earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import contextlib
import os

block = b"x" * 65536
for folder in ("/tmp", "/dev/shm", "."):
    for index in range(16):
        with contextlib.suppress(OSError), open(os.path.join(folder, f"leftover-{index}"), "wb") as file:
            file.write(block)
with contextlib.suppress(OSError):
    for _ in range(5000):
        os.mkdir("deep")
        os.chdir("deep")
