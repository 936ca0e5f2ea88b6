"""A child reaches no network: it could send what it was handed (a reference) to a classmate graded at the same
time, or the forward's values to a machine that runs autograd for it. Landlock stops TCP only."""

from __future__ import annotations

import socket
from pathlib import Path

from grading_support import SAMPLES, grade_command, read_csv

from gradcheck_kit.grading import seccomp

SENDS_OVER_UDP = """
import socket
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.sendto(probs[0].numpy().tobytes(), ("127.0.0.1", {port}))
"""


def test_a_submission_cannot_send_over_udp(tmp_path: Path) -> None:
    """The test's listener on 127.0.0.1 hears nothing; the submission keeps the three gradients it computed before,
    and its row says the socket was refused (where the seccomp filter knows the machine's calls)."""
    three = "\n".join((SAMPLES / "correct.py").read_text().splitlines()[2:6])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        submission = tmp_path / "udp.py"
        submission.write_text(three + SENDS_OVER_UDP.format(port=listener.getsockname()[1]))
        assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
        try:
            heard = listener.recv(65536)
        except BlockingIOError:
            heard = b""
    assert heard == b"", "a child sent a datagram out of the sandbox"
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    if seccomp.supported():
        assert (row["status"], float(row["score"])) == ("error", 3), row["message"]
        assert "PermissionError" in row["message"] and "socket" in row["message"]
