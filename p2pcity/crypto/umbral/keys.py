"""Umbral keys and ECDSA signatures, byte-compatible with umbral-pre.

Signatures are ECDSA over secp256k1 on SHA-256(message), 64 bytes ``r || s``
big-endian. libsecp256k1 signs deterministically (RFC 6979) where umbral-pre
signs with fresh randomness; both produce low-s signatures and both verifiers
refuse high-s ones, so either side verifies the other's.
"""

from __future__ import annotations

import hashlib

import coincurve
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from p2pcity.crypto.umbral.curve import (
    SCALAR_SIZE,
    N,
    Point,
    RandomBytes,
    default_rng,
    random_nonzero_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from p2pcity.crypto.umbral.errors import DecodeError
from p2pcity.crypto.umbral.hashing import hash_to_scalar, hkdf_sha256
from p2pcity.crypto.umbral.wire import require_bytes

SIGNATURE_SIZE = 64


class SecretKey:
    """A nonzero scalar. Its ``repr`` never shows the value."""

    __slots__ = ("_public", "scalar")

    def __init__(self, scalar: int) -> None:
        if not 0 < scalar < N:
            raise DecodeError("secret key must be in [1, n-1]")
        self.scalar = scalar
        self._public: PublicKey | None = None

    @classmethod
    def random(cls, rng: RandomBytes | None = None) -> SecretKey:
        return cls(random_nonzero_scalar(default_rng(rng)))

    @classmethod
    def from_bytes(cls, data: bytes) -> SecretKey:
        return cls(scalar_from_bytes(data))

    def to_secret_bytes(self) -> bytes:
        """The 32-byte big-endian scalar (umbral-pre's ``to_be_bytes``)."""
        return scalar_to_bytes(self.scalar)

    def public_key(self) -> PublicKey:
        if self._public is None:
            self._public = PublicKey(Point.base_mul(self.scalar))
        return self._public

    def __repr__(self) -> str:
        return "SecretKey(...)"


class PublicKey:
    """A point, 33 bytes compressed on the wire."""

    __slots__ = ("point",)

    def __init__(self, point: Point) -> None:
        self.point = point

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        return cls(Point.from_bytes(data))

    def to_bytes(self) -> bytes:
        return self.point.to_bytes()

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.point == other.point

    def __hash__(self) -> int:
        return hash(self.point)

    def __repr__(self) -> str:
        return f"PublicKey({self.to_bytes().hex()})"


class Signature:
    """An ECDSA signature, ``r || s`` (umbral-pre's ``to_be_bytes``)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        # Refuse r or s outside [1, n-1] here, as k256 does when parsing; a
        # high s parses but never verifies (both libraries demand low s).
        data = require_bytes(data, "signature")
        if len(data) != SIGNATURE_SIZE:
            raise DecodeError(f"signature must be {SIGNATURE_SIZE} bytes, got {len(data)}")
        scalar_from_bytes(data[:SCALAR_SIZE])
        scalar_from_bytes(data[SCALAR_SIZE:])
        return cls(data)

    def to_bytes(self) -> bytes:
        return self._raw

    def __bytes__(self) -> bytes:
        return self._raw

    def verify(self, verifying_pk: PublicKey, message: bytes) -> bool:
        digest = hashlib.sha256(message).digest()
        try:
            der = cdata_to_der(deserialize_compact(self._raw))
            return bool(verifying_pk.point.backend.verify(der, digest, hasher=None))
        except ValueError:
            return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signature):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"Signature({self._raw.hex()})"


class Signer:
    """Signs with a secret key; deliberately not serialisable."""

    __slots__ = ("_key", "_verifying_key")

    def __init__(self, secret_key: SecretKey) -> None:
        self._key = coincurve.PrivateKey(secret_key.to_secret_bytes())
        self._verifying_key = secret_key.public_key()

    def sign(self, message: bytes) -> Signature:
        digest = hashlib.sha256(message).digest()
        # The recoverable form is the compact r || s plus a recovery byte; drop it.
        compact = self._key.sign_recoverable(digest, hasher=None)[:SIGNATURE_SIZE]
        return Signature(compact)

    def verifying_key(self) -> PublicKey:
        return self._verifying_key

    def __repr__(self) -> str:
        return "Signer(...)"


class SecretKeyFactory:
    """Deterministic key derivation from a 32-byte seed, as umbral-pre's ``SecretKeyFactory``.

    Lets a node keep one seed and derive its PRE key (and per-purpose keys) by label.
    """

    SEED_SIZE = 32
    _DERIVED_SIZE = 64

    __slots__ = ("_seed",)

    def __init__(self, seed: bytes) -> None:
        seed = require_bytes(seed, "seed")
        if len(seed) != self.SEED_SIZE:
            raise DecodeError(f"seed must be {self.SEED_SIZE} bytes, got {len(seed)}")
        self._seed = seed

    @classmethod
    def random(cls, rng: RandomBytes | None = None) -> SecretKeyFactory:
        return cls(default_rng(rng)(cls.SEED_SIZE))

    def make_key(self, label: bytes) -> SecretKey:
        info = b"KEY_DERIVATION/" + label
        derived = hkdf_sha256(self._seed, self._DERIVED_SIZE, info=info)
        return SecretKey(hash_to_scalar(info, derived))

    def make_secret(self, label: bytes) -> bytes:
        return hkdf_sha256(self._seed, self._DERIVED_SIZE, info=b"SECRET_DERIVATION/" + label)

    def make_factory(self, label: bytes) -> SecretKeyFactory:
        info = b"FACTORY_DERIVATION/" + label
        return SecretKeyFactory(hkdf_sha256(self._seed, self.SEED_SIZE, info=info))

    def __repr__(self) -> str:
        return "SecretKeyFactory(...)"
