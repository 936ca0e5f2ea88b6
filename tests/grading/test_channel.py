"""The wire format: what round-trips, and what a hostile sender cannot make the grader accept."""

from __future__ import annotations

import ast
import os

import pytest
import torch

from gradcheck_kit.grading.channel import ChannelError, decode_value, encode_value, read_frame, write_frame
from gradcheck_kit.grading.statements import exempt_names


@pytest.mark.parametrize(
    "tensor",
    [torch.randn(3, 4), torch.arange(6).view(2, 3).T, torch.tensor(2.5, dtype=torch.bfloat16), torch.ones(0, 3)],
)
def test_tensors_round_trip_through_a_pipe(tensor: torch.Tensor) -> None:
    read, write = os.pipe()
    fields, payload = encode_value(tensor)
    write_frame(write, {"op": "commit", **fields}, payload)
    header, data = read_frame(read, 1 << 20)
    assert torch.equal(decode_value(header, data), tensor)
    os.close(read), os.close(write)


def test_non_tensors_cross_as_a_type_name_only() -> None:
    class Sneaky:
        pass

    value = decode_value(*encode_value(Sneaky()))
    assert type(value).__name__ == "Sneaky" and not isinstance(value, Sneaky)
    assert type(decode_value(*encode_value(0.5))).__name__ == "float"


@pytest.mark.parametrize(
    ("header", "payload", "problem"),
    [
        ({"kind": "tensor", "dtype": "object", "shape": [1]}, b"x", "not allowed"),
        ({"kind": "tensor", "dtype": "float32", "shape": [4]}, b"\0" * 8, "does not match"),
        ({"kind": "tensor", "dtype": "float32", "shape": [-1]}, b"", "malformed shape"),
        ({"kind": "scalar", "value": 1}, b"", "unexpected value kind"),
    ],
)
def test_malformed_values_are_refused(header: dict, payload: bytes, problem: str) -> None:
    with pytest.raises(ChannelError, match=problem):
        decode_value(header, payload)


def test_oversized_frames_are_refused_before_reading_them() -> None:
    read, write = os.pipe()
    write_frame(write, {"op": "commit"}, b"\0" * 100)
    with pytest.raises(ChannelError, match="over the 10-byte limit"):
        read_frame(read, 10)
    os.close(read), os.close(write)


@pytest.mark.parametrize(
    ("code", "exempt"),
    [
        ("dcounts += x * dcounts_sum", {"dcounts"}),
        ("dC[ix] += demb[k, j]", {"dC"}),
        ("dC.index_add_(0, ix, demb)", {"dC"}),
        ("cmp('logits', dlogits, logits)", {"cmp", "dlogits", "logits"}),
        ("dh = dlogits @ W2.T", {"dh"}),
        ("print(dlogits, cmp('logits', dlogits, logits))", {"cmp", "logits"}),
    ],
)
def test_a_statement_building_a_name_or_showing_it_to_cmp_does_not_read_it(code: str, exempt: set) -> None:
    assert exempt_names(ast.parse(code).body[0]) == exempt
