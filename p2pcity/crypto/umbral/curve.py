"""secp256k1: points through libsecp256k1 (coincurve), scalars as Python ints mod n.

Points are immutable and always valid, never the point at infinity: the
33-byte compressed SEC1 encoding Umbral puts on the wire cannot express it, so
an operation that would produce it raises ``UmbralError`` instead. Scalars are
plain ints; Python's bignum arithmetic is not constant time, which is the
price of not writing a C extension (libsecp256k1's point multiplication, where
most of the secret work happens, is constant time).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import coincurve

from p2pcity.crypto.umbral.errors import DecodeError, UmbralError
from p2pcity.crypto.umbral.wire import require_bytes

# Field prime and group order of secp256k1 (SEC 2, section 2.4.1).
P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

POINT_SIZE = 33
SCALAR_SIZE = 32

RandomBytes = Callable[[int], bytes]
"""A source of uniform random bytes; ``os.urandom`` unless a test or simulator passes its own."""


def default_rng(rng: RandomBytes | None) -> RandomBytes:
    return os.urandom if rng is None else rng


def random_nonzero_scalar(rng: RandomBytes) -> int:
    # Rejection sampling keeps the scalar uniform on [1, n-1]; n is so close to
    # 2^256 that a retry happens with probability ~2^-128.
    while True:
        k = int.from_bytes(rng(SCALAR_SIZE), "big")
        if 0 < k < N:
            return k


def scalar_to_bytes(k: int) -> bytes:
    return k.to_bytes(SCALAR_SIZE, "big")


def scalar_from_bytes(data: bytes, *, nonzero: bool = True) -> int:
    """Decode a big-endian scalar, refusing values >= n (no silent reduction)."""
    data = require_bytes(data, "scalar")
    if len(data) != SCALAR_SIZE:
        raise DecodeError(f"scalar must be {SCALAR_SIZE} bytes, got {len(data)}")
    k = int.from_bytes(data, "big")
    if k >= N:
        raise DecodeError("scalar is not reduced modulo the group order")
    if nonzero and k == 0:
        raise DecodeError("scalar must be nonzero")
    return k


def invert(k: int) -> int:
    if k % N == 0:
        raise UmbralError("zero has no inverse")
    return pow(k, -1, N)


class Point:
    """A point of secp256k1 other than infinity."""

    __slots__ = ("_encoded", "_key")

    def __init__(self, key: coincurve.PublicKey, encoded: bytes | None = None) -> None:
        self._key = key
        self._encoded = encoded

    @classmethod
    def from_bytes(cls, data: bytes) -> Point:
        # coincurve would also take 65-byte uncompressed and hybrid forms; the
        # wire format has exactly one encoding per point, so refuse them here.
        data = require_bytes(data, "point")
        if len(data) != POINT_SIZE or data[0] not in (2, 3):
            raise DecodeError("point must be 33 bytes in compressed SEC1 form")
        try:
            key = coincurve.PublicKey(data)
        except (ValueError, TypeError) as exc:
            raise DecodeError("bytes are not a point of secp256k1") from exc
        return cls(key, data)

    @classmethod
    def from_affine(cls, x: int, y: int) -> Point:
        try:
            return cls(coincurve.PublicKey.from_point(x, y))
        except (ValueError, TypeError) as exc:
            raise UmbralError("coordinates are not a point of secp256k1") from exc

    @classmethod
    def base_mul(cls, k: int) -> Point:
        """k * G, through libsecp256k1's precomputed generator table."""
        k %= N
        if k == 0:
            raise UmbralError("0 * G is the point at infinity")
        return cls(coincurve.PublicKey.from_valid_secret(scalar_to_bytes(k)))

    @property
    def backend(self) -> coincurve.PublicKey:
        """The libsecp256k1 handle, for the signature code; never the point at infinity."""
        return self._key

    def to_bytes(self) -> bytes:
        if self._encoded is None:
            self._encoded = self._key.format(compressed=True)
        return self._encoded

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def __mul__(self, k: int) -> Point:
        k %= N
        if k == 0:
            raise UmbralError("multiplication by zero gives the point at infinity")
        return Point(self._key.multiply(scalar_to_bytes(k)))

    def __add__(self, other: Point) -> Point:
        return Point.sum((self, other))

    @staticmethod
    def sum(points: Iterable[Point]) -> Point:
        keys = [p._key for p in points]
        if not keys:
            raise UmbralError("empty sum is the point at infinity")
        if len(keys) == 1:
            return Point(keys[0])
        try:
            return Point(coincurve.PublicKey.combine_keys(keys))
        except ValueError as exc:
            raise UmbralError("sum is the point at infinity") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"Point({self.to_bytes().hex()})"
