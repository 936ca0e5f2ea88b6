# Hostile: raises an exception whose class name is a spreadsheet formula, to land "=..." in gradebook.csv.
# Earns 3; the cell is written with a leading quote.
# ruff: noqa: F821 - the names are the forward's locals, supplied by the grader
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)


def fail():
    raise type('=HYPERLINK("http://evil","ok")', (Exception,), {})("<script>alert(1)</script>")


dcounts = fail()
