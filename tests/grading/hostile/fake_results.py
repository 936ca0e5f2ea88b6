# Hostile: writes a perfect results.json and gradebook.csv wherever it can and prints one. Earns 3.
# ruff: noqa: F821, E402 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import json
import os

fake = json.dumps({"score": 26, "tests": []})
for folder in (".", "/tmp", "/autograder/results", os.path.expanduser("~")):
    for name in ("results.json", "gradebook.csv"):
        try:
            with open(os.path.join(folder, name), "w") as file:
                file.write(fake)
        except OSError:
            pass
print(fake)
