"""The MessagePack framing umbral-pre's ``bytes(obj)`` uses, reduced to what Umbral needs.

umbral-pre serialises its structs with rmp-serde: a struct is a fixarray of
its fields, every field is a fixed-size byte string (``bin 8``) or a bool.
Since every size is fixed, an object has exactly one encoding and a fixed
length; this module writes it and reads it back strictly (no other
MessagePack spelling of the same value is accepted), so a decoded object
re-encodes to the very same bytes, which is what content addressing on chain
needs.
"""

from __future__ import annotations

from p2pcity.crypto.umbral.errors import DecodeError

_FIXARRAY = 0x90
_BIN8 = 0xC4
_FALSE = 0xC2
_TRUE = 0xC3


def array_header(count: int) -> bytes:
    return bytes([_FIXARRAY | count])


def bin8(data: bytes) -> bytes:
    return bytes([_BIN8, len(data)]) + data


def boolean(value: bool) -> bytes:
    return bytes([_TRUE if value else _FALSE])


def require_bytes(data: object, what: str) -> bytes:
    """Decoders take any bytes-like value; anything else is a ``DecodeError``, not a crash."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    return bytes(data)


class Reader:
    """Reads fields in order; raises ``DecodeError`` at the first deviation."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = require_bytes(data, what)
        self._pos = 0
        self._what = what

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise DecodeError(f"{self._what}: truncated")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def array(self, count: int) -> None:
        if self._take(1)[0] != _FIXARRAY | count:
            raise DecodeError(f"{self._what}: expected an array of {count} fields")

    def bin8(self, size: int) -> bytes:
        header = self._take(2)
        if header[0] != _BIN8 or header[1] != size:
            raise DecodeError(f"{self._what}: expected a {size}-byte field")
        return self._take(size)

    def raw(self, size: int) -> bytes:
        return self._take(size)

    def boolean(self) -> bool:
        marker = self._take(1)[0]
        if marker not in (_FALSE, _TRUE):
            raise DecodeError(f"{self._what}: expected a bool")
        return marker == _TRUE

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise DecodeError(f"{self._what}: {len(self._data) - self._pos} trailing bytes")
