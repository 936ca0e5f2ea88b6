"""The wire format between the grader and a sandboxed submission: framed JSON headers and raw tensor bytes.

A frame is a 4-byte big-endian header length, a JSON header, then ``header["nbytes"]``
payload bytes. Tensors travel as dtype + shape + raw buffer and are rebuilt with
``torch.frombuffer``: nothing the submission produced is ever unpickled, and every
size is bounded before anything is allocated.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from typing import Any

import torch

MAX_HEADER = 64 * 1024
"""Largest JSON header accepted, in bytes."""

MAX_DIMS = 8

DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.uint8,
        torch.bool,
    )
}
"""The only dtypes a tensor may have on the wire."""

_MAX_EXTENT = 2**63
"""A shape's sizes (empty ones counted as 1) times its element's bytes must stay below this, or torch refuses to lay
it out (its strides and storage size are 64-bit), even for a tensor of no element."""
_LENGTH = struct.Struct(">I")
_CHUNK = 1 << 20


class ChannelError(Exception):
    """The other side broke the protocol: a malformed, oversized or unexpected frame."""


class ChannelTimeout(ChannelError):
    """The deadline passed before a whole frame could be read or written."""


class Opaque:
    """Stands for a value that is not a tensor; only its type name crossed the channel."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def opaque(type_name: str) -> Opaque:
    """A stand-in whose ``type(...).__name__`` is ``type_name``, so messages name the student's type."""
    name = type_name if type_name.isidentifier() else "object"
    return type(name, (Opaque,), {})()


def encode_value(value: Any, *, scalars: bool = False) -> tuple[dict[str, Any], bytes]:
    """The header fields and payload describing ``value``: a tensor's bytes, a JSON scalar, or a type name."""
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value)
    if scalars and (value is None or isinstance(value, (bool, int, float, str))):
        return {"kind": "scalar", "value": value}, b""
    return {"kind": "other", "type": type(value).__name__[:100]}, b""


def _encode_tensor(value: torch.Tensor) -> tuple[dict[str, Any], bytes]:
    dtype = str(value.dtype).removeprefix("torch.")
    if dtype not in DTYPES or value.layout is not torch.strided or value.device.type == "meta":
        return {"kind": "other", "type": "unsupported_tensor"}, b""
    tensor = torch.Tensor.detach(value).cpu().clone(memory_format=torch.contiguous_format)
    payload = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"kind": "tensor", "dtype": dtype, "shape": list(tensor.shape)}, payload


def decode_value(header: dict[str, Any], payload: bytes, *, scalars: bool = False) -> Any:
    """Rebuild a value from :func:`encode_value`'s fields; scalars only when the sender is trusted."""
    kind = header.get("kind")
    if kind == "tensor":
        return _decode_tensor(header, payload)
    if kind == "other":
        return opaque(str(header.get("type", "object"))[:100])
    if kind == "scalar" and scalars:
        return header.get("value")
    raise ChannelError(f"unexpected value kind {kind!r}")


def _decode_tensor(header: dict[str, Any], payload: bytes) -> torch.Tensor:
    dtype, shape, expected = tensor_layout(header)
    if expected != len(payload):
        raise ChannelError(f"payload of {len(payload)} bytes does not match shape {shape} of {dtype}")
    if not payload:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(payload), dtype=dtype).reshape(shape)


def tensor_layout(header: dict[str, Any]) -> tuple[torch.dtype, list[int], int]:
    """A tensor header's dtype, shape and byte size, validated before any payload is read."""
    name = header.get("dtype")
    dtype = DTYPES.get(name) if isinstance(name, str) else None
    shape = header.get("shape")
    if dtype is None:
        raise ChannelError(f"dtype {header.get('dtype')!r} is not allowed on the wire")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(_is_size(s) for s in shape)):
        raise ChannelError(f"malformed shape {shape!r}")
    if math.prod(max(size, 1) for size in shape) * dtype.itemsize >= _MAX_EXTENT:  # [0, 2**39, 2**39]: 0 bytes
        raise ChannelError(f"shape {shape!r} is too large for a tensor")
    return dtype, shape, math.prod(shape) * dtype.itemsize


def placeholder(header: dict[str, Any]) -> torch.Tensor:
    """A tensor with the header's dtype and shape and no data (on the meta device): what the grader keeps of a
    payload too large to read, so the row still says which shape was handed in."""
    dtype, shape, _ = tensor_layout(header)
    return torch.empty(shape, dtype=dtype, device="meta")


def _is_size(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**40


def write_frame(fd: int, header: dict[str, Any], payload: bytes = b"", deadline: float | None = None) -> None:
    """Send one frame; with a deadline the fd must be non-blocking and :class:`ChannelTimeout` may be raised."""
    data = json.dumps({**header, "nbytes": len(payload)}).encode()
    _write_all(fd, _LENGTH.pack(len(data)) + data + payload, deadline)


class Reader:
    """The receiving end of one stream of frames, read through a buffer of at most one chunk past the frame
    asked for: a frame written at once arrives with one ``read``. With a deadline the fd must be non-blocking
    (:class:`ChannelTimeout` once it passes, even while data keeps coming); without one it may block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def frame(self, max_payload: int, deadline: float | None = None) -> tuple[dict[str, Any], bytes] | None:
        """One frame, or ``None`` at a clean end of stream; payloads over ``max_payload`` are refused."""
        header = self.header(max_payload, deadline)
        if header is None:
            return None
        return header, self.payload(header, deadline)

    def header(self, max_payload: int, deadline: float | None = None) -> dict[str, Any] | None:
        """A frame's header only (its payload is still to be read or skipped), or ``None`` at a clean end."""
        prefix = self._take(_LENGTH.size, deadline, eof_ok=True)
        if prefix is None:
            return None
        (length,) = _LENGTH.unpack(prefix)
        if length > MAX_HEADER:
            raise ChannelError(f"header of {length} bytes is over the {MAX_HEADER}-byte limit")
        try:
            header = json.loads(self._take(length, deadline))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:  # '[' * 60000 nests too deep
            raise ChannelError(f"malformed header: {error}") from None
        if not isinstance(header, dict):
            raise ChannelError("a header must be a JSON object")
        nbytes = header.get("nbytes", 0)
        if type(nbytes) is not int or not 0 <= nbytes <= max_payload:
            raise ChannelError(f"payload of {nbytes!r} bytes is over the {max_payload}-byte limit")
        return header

    def payload(self, header: dict[str, Any], deadline: float | None = None) -> bytes:
        """The payload announced by ``header`` (already bounded by :meth:`header`)."""
        return self._take(header.get("nbytes", 0), deadline) or b""

    def skip(self, header: dict[str, Any], deadline: float | None = None) -> None:
        """Read and drop the payload announced by ``header``, a chunk at a time, so it never sits in memory."""
        left = header.get("nbytes", 0)
        while left > 0:
            left -= len(self._take(min(left, _CHUNK), deadline) or b"")

    def _take(self, size: int, deadline: float | None, eof_ok: bool = False) -> bytes | None:
        while len(self._buffer) < size:
            if not self._fill(deadline):
                if eof_ok and not self._buffer:
                    return None
                raise ChannelError("stream ended inside a frame")
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def _fill(self, deadline: float | None) -> bool:
        """Append what the fd has (up to a chunk), waiting for it if need be; False at the end of the stream."""
        while True:
            _check(deadline)
            try:
                chunk = os.read(self.fd, _CHUNK)
            except BlockingIOError:
                _wait(self.fd, deadline, write=False)
                continue
            self._buffer += chunk
            return bool(chunk)


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise ChannelTimeout("deadline passed")


def _wait(fd: int, deadline: float | None, write: bool) -> None:
    """Until ``fd`` is ready (a non-blocking fd said it was not), or :class:`ChannelTimeout` at the deadline."""
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        raise ChannelTimeout("deadline passed")
    ready = select.select([], [fd], [], remaining) if write else select.select([fd], [], [], remaining)
    if not any(ready):
        raise ChannelTimeout("deadline passed")


def _write_all(fd: int, data: bytes, deadline: float | None) -> None:
    view = memoryview(data)
    while view:
        _check(deadline)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            _wait(fd, deadline, write=True)
            continue
        view = view[written:]
