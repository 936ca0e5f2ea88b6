"""The wire format: what round-trips, and what a hostile sender cannot make the grader accept."""

from __future__ import annotations

import ast
import os
import struct
import time

import pytest
import torch

from gradcheck_kit.grading import runtime
from gradcheck_kit.grading.channel import ChannelError, ChannelTimeout, Reader, decode_value, encode_value, write_frame
from gradcheck_kit.grading.sandbox import _MIN_CAP, Settings, _Answer, _converse, _Encodings
from gradcheck_kit.grading.statements import exempt_names


@pytest.mark.parametrize(
    "tensor",
    [torch.randn(3, 4), torch.arange(6).view(2, 3).T, torch.tensor(2.5, dtype=torch.bfloat16), torch.ones(0, 3)],
)
def test_tensors_round_trip_through_a_pipe(tensor: torch.Tensor) -> None:
    read, write = os.pipe()
    fields, payload = encode_value(tensor)
    write_frame(write, {"op": "commit", **fields}, payload)
    header, data = Reader(read).frame(1 << 20)
    assert torch.equal(decode_value(header, data), tensor)
    os.close(read), os.close(write)


def test_frames_written_back_to_back_or_in_pieces_are_read_one_at_a_time() -> None:
    read, write = os.pipe()
    for index in range(3):
        write_frame(write, {"op": "note", "index": index}, b"x" * index)
    header = b'{"nbytes": 2}'
    data = struct.pack(">I", len(header)) + header + b"ab"
    os.write(write, data[:6])  # the rest of this frame comes later
    reader = Reader(read)
    expected = [({"op": "note", "index": i, "nbytes": i}, b"x" * i) for i in range(3)]
    assert [reader.frame(10) for _ in range(3)] == expected
    os.write(write, data[6:])
    os.close(write)
    assert reader.frame(10) == ({"nbytes": 2}, b"ab")
    assert reader.frame(10) is None
    os.close(read)


def test_a_deadline_passes_even_while_frames_keep_coming() -> None:
    read, write = os.pipe()
    os.set_blocking(read, False)
    write_frame(write, {"op": "note"})
    reader = Reader(read)
    with pytest.raises(ChannelTimeout):
        reader.frame(10, deadline=time.monotonic() - 1)
    assert reader.frame(10, deadline=time.monotonic() + 1) == ({"op": "note", "nbytes": 0}, b"")
    with pytest.raises(ChannelTimeout):  # nothing more to read: it waits until the deadline, then says so
        reader.frame(10, deadline=time.monotonic() + 0.05)
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
        ({"kind": "tensor", "dtype": "float32", "shape": [0, 2**39, 2**39, 2**39]}, b"", "too large for a tensor"),
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
        Reader(read).frame(10)
    os.close(read), os.close(write)


def test_a_header_nested_past_the_json_reader_s_depth_breaks_the_channel() -> None:
    """It was a RecursionError out of the grader (a grader-error row, blamed on the grader)."""
    read, write = os.pipe()
    nested = b"[" * 60000
    os.write(write, struct.pack(">I", len(nested)) + nested)
    with pytest.raises(ChannelError, match="malformed header: maximum recursion depth"):
        Reader(read).frame(10)
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


def test_a_reference_is_encoded_once_and_again_after_an_in_place_change() -> None:
    encodings = _Encodings()
    reference = torch.ones(3)
    first = encodings.of(reference)
    assert encodings.of(reference)[1] is first[1]  # the same bytes, not encoded again
    reference.mul_(2)
    fields, payload = encodings.of(reference)
    assert torch.equal(decode_value({**fields, "nbytes": len(payload)}, payload), torch.full((3,), 2.0))
    large = torch.zeros(_MIN_CAP // 4 + 1)  # over the cap: encoded each time, never kept
    assert encodings.of(large)[1] is not encodings.of(large)[1]
    assert encodings.of(None) == ({"kind": "none"}, b"")


def _frames(*frames: tuple[dict, bytes]) -> Reader:
    read, write = os.pipe()
    for header, payload in frames:
        write_frame(write, header, payload)
    os.close(write)
    return Reader(read)


def test_a_commit_unchanged_since_its_draft_crosses_without_its_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    read, write = os.pipe()
    monkeypatch.setattr(runtime, "EVENTS_FD", write)
    link = runtime.Link(1 << 20, Reader(-1))
    link.draft("x", torch.ones(3))
    link.commit("x", torch.ones(3), reply=False)  # the same bytes: no payload again
    link.draft("y", torch.ones(3))
    link.commit("y", torch.zeros(3), reply=False)  # changed since: sent whole
    os.close(write)
    reader, sent = Reader(read), []
    while (frame := reader.frame(1 << 20)) is not None:
        sent.append((frame[0]["op"], frame[0]["variable"], frame[0]["kind"], len(frame[1])))
    os.close(read)
    assert sent == [("draft", "x", "tensor", 12), ("commit", "x", "drafted", 0)] + [
        ("draft", "y", "tensor", 12),
        ("commit", "y", "tensor", 12),
    ]


def test_the_grader_takes_a_drafted_commit_as_its_draft_and_refuses_one_never_drafted() -> None:
    settings = Settings(tracked={"dx": "x"}, payload_caps={"x": 1 << 20})
    fields, payload = encode_value(torch.arange(3.0))
    handed_in: dict = {}
    answer = _Answer(-1, lambda variable, value, wants: handed_in.setdefault(variable, value), _Encodings())
    drafted = ({"op": "commit", "variable": "x", "reply": False, "kind": "drafted"}, b"")
    draft = ({"op": "draft", "variable": "x", **fields}, payload)
    run = _converse(_frames(draft, drafted, ({"op": "done"}, b"")), answer, time.monotonic() + 5, settings)
    assert run.outcome == "done" and torch.equal(handed_in["x"], torch.arange(3.0))
    run = _converse(_frames(drafted), answer, time.monotonic() + 5, settings)
    assert (run.outcome, run.error["message"]) == (
        "protocol",
        "the submission broke the channel: a commit of 'x' names a draft that was never sent",
    )
