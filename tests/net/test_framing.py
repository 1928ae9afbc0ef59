"""Frame reader on fake streams: varints, limits, malformed input."""

from __future__ import annotations

import pytest

from p2pcity.net.errors import MessageTooLargeError, ProtocolError
from p2pcity.net.framing import FrameReader, Kind, encode_frame, encode_uvarint


class FakeStream:
    """Delivers the given bytes in small chunks, then EOF (b"")."""

    def __init__(self, data: bytes, chunk: int = 3) -> None:
        self._data = data
        self._chunk = chunk

    async def read(self, n: int | None = None) -> bytes:
        size = min(self._chunk, n or self._chunk)
        out, self._data = self._data[:size], self._data[size:]
        return out

    async def write(self, data: bytes) -> None:
        raise AssertionError("not used")


@pytest.mark.parametrize("size", [0, 1, 126, 127, 128, 300, 70_000])
async def test_payload_sizes_around_varint_boundaries(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    reader = FrameReader(FakeStream(encode_frame(Kind.DATA, payload), chunk=4096), 100_000)
    assert await reader.read() == (Kind.DATA, payload)
    assert len(encode_uvarint(size + 1)) == max(1, ((size + 1).bit_length() + 6) // 7)


async def test_frames_roundtrip_across_chunk_boundaries() -> None:
    frames = [(Kind.REQUEST, b""), (Kind.DATA, b"x" * 1000), (Kind.END, b"")]
    reader = FrameReader(FakeStream(b"".join(encode_frame(k, p) for k, p in frames)), 4096)
    assert [await reader.read() for _ in frames] == frames


async def test_oversize_frame_refused_before_reading_body() -> None:
    reader = FrameReader(FakeStream(encode_uvarint(10_000_000)), 1024)
    with pytest.raises(MessageTooLargeError):
        await reader.read()


@pytest.mark.parametrize(
    "data",
    [
        b"\xff" * 11,  # varint that never ends
        b"\x00",  # empty frame: no kind byte
        encode_uvarint(2) + b"\x63x",  # unknown kind 0x63
        encode_uvarint(50) + b"\x01short",  # stream ends mid-frame
        b"",  # nothing at all
    ],
)
async def test_malformed_input_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        await FrameReader(FakeStream(data), 1024).read()
