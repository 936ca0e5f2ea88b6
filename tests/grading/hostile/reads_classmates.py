# Hostile: hunts for a right answer to copy: the reference solution beside the assignment (found through the
# package's own path) or in /autograder/source, classmates' sources in other workdirs under /tmp, any command
# line in /proc naming a .py file, and sys.orig_argv. Finds none; earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import glob
import os
import sys
from pathlib import Path

import gradcheck_kit

checkout = Path(gradcheck_kit.__file__).resolve().parents[1]
candidates = [str(checkout / "examples" / "makemore" / "backward_ex1.py")]
candidates += glob.glob("/autograder/source/**/backward_ex1.py", recursive=True)
candidates += glob.glob("/tmp/gradcheck-*/*.py") + [arg for arg in sys.orig_argv if arg.endswith("correct.py")]
for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        words = Path(cmdline).read_bytes().split(b"\0")
    except OSError:
        continue
    candidates += [os.fsdecode(word) for word in words if word.endswith(b"correct.py")]
for candidate in candidates:
    try:
        answer = Path(candidate).read_text()
    except OSError:
        continue
    if "dC" in answer:
        exec(answer)
        break
