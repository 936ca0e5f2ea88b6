# Hostile: looks for the other submissions' paths in sys.argv and in the frames above it (the grader's
# parsed arguments, in a zygote forked from the grader) and runs a classmate's answer. Finds none; earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import sys
from pathlib import Path, PurePath

seen = [str(arg) for arg in sys.argv]
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        items = vars(value).values() if hasattr(value, "_get_kwargs") else [value]
        for item in items:
            seen += [str(p) for p in (item if isinstance(item, list) else [item]) if isinstance(p, (str, PurePath))]
    frame = frame.f_back
answers = [path for path in seen if path.endswith("correct.py")]
if answers:
    exec(Path(answers[0]).read_text())
