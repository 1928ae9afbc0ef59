"""Frames on a request stream: ``uvarint(len(body)) || body``, ``body = kind || payload``.

The kind byte makes every frame non-empty, so an empty payload is fine and
the end marker is never an empty frame (py-libp2p 0.8.1's
``VarIntLengthMsgReadWriter`` raises StreamEOF on an empty frame; we use our
own reader anyway, so the size check happens before any allocation).

Kinds: a request (``REQUEST``, answered) or a one-way message (``MESSAGE``)
from the client; ``DATA`` frames then ``END`` or ``ERROR`` from the server.
"""

from __future__ import annotations

import enum
from typing import Protocol

from p2pcity.net.errors import MessageTooLargeError, ProtocolError

_MAX_VARINT_BYTES = 10
_READ_CHUNK = 64 * 1024


class Kind(enum.IntEnum):
    REQUEST = 1
    MESSAGE = 2
    DATA = 3
    END = 4
    ERROR = 5


class ByteStream(Protocol):
    """What we need of a libp2p stream (``INetStream``)."""

    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


def encode_uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_frame(kind: Kind, payload: bytes) -> bytes:
    return encode_uvarint(len(payload) + 1) + bytes([kind]) + payload


class FrameReader:
    """Reads frames from a stream, refusing any frame above ``max_size`` payload bytes.

    Raises :class:`ProtocolError` on malformed input or a premature end, and
    :class:`MessageTooLargeError` before reading an oversize body. Libp2p stream
    errors (reset, EOF) propagate for the caller to translate.
    """

    def __init__(self, stream: ByteStream, max_size: int) -> None:
        self._stream = stream
        self._max_size = max_size
        self._buf = bytearray()

    async def _fill(self) -> None:
        chunk = await self._stream.read(_READ_CHUNK)
        if not chunk:
            raise ProtocolError("stream ended in the middle of a frame")
        self._buf += chunk

    async def _read_length(self) -> int:
        value = 0
        for index in range(_MAX_VARINT_BYTES):
            if index >= len(self._buf):
                await self._fill()
            byte = self._buf[index]
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                del self._buf[: index + 1]
                return value
        raise ProtocolError("frame length is not a valid varint")

    async def read(self) -> tuple[Kind, bytes]:
        length = await self._read_length()
        if length == 0:
            raise ProtocolError("empty frame (no kind byte)")
        if length - 1 > self._max_size:
            raise MessageTooLargeError(f"frame of {length - 1} bytes exceeds {self._max_size}")
        while len(self._buf) < length:
            await self._fill()
        body = bytes(self._buf[:length])
        del self._buf[:length]
        try:
            kind = Kind(body[0])
        except ValueError as exc:
            raise ProtocolError(f"unknown frame kind {body[0]}") from exc
        return kind, body[1:]
