"""The capsule: the encapsulated key seed, its self-check, and opening it.

Encapsulation (Umbral KEM): E = rG, V = uG, s = u + r*h(E, V); the key seed is
the compressed point (r + u) * pk. Anyone can check sG == V + hE, so a capsule
is verified on decoding and a malformed one never reaches the proxies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pcity.crypto.umbral import wire
from p2pcity.crypto.umbral.curve import (
    POINT_SIZE,
    SCALAR_SIZE,
    N,
    Point,
    RandomBytes,
    invert,
    random_nonzero_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from p2pcity.crypto.umbral.errors import DecodeError, DecryptionError, UmbralError
from p2pcity.crypto.umbral.hashing import (
    hash_capsule_points,
    hash_to_polynomial_arg,
    hash_to_shared_secret,
)
from p2pcity.crypto.umbral.keys import PublicKey, SecretKey

if TYPE_CHECKING:
    from p2pcity.crypto.umbral.capsule_frag import CapsuleFrag

CAPSULE_SIZE = 1 + 3 * 2 + 2 * POINT_SIZE + SCALAR_SIZE  # 105, umbral-pre's bytes(capsule)
CAPSULE_SIMPLE_SIZE = 2 * POINT_SIZE + SCALAR_SIZE  # 98, umbral-pre's to_bytes_simple()


@dataclass(frozen=True, slots=True)
class Capsule:
    """(E, V, s). Build one with ``encrypt`` or the ``from_bytes*`` decoders, which self-check."""

    point_e: Point
    point_v: Point
    signature: int

    @classmethod
    def from_public_key(cls, delegating_pk: PublicKey, rng: RandomBytes) -> tuple[Capsule, bytes]:
        """A fresh capsule and the key seed it encapsulates."""
        priv_r = random_nonzero_scalar(rng)
        priv_u = random_nonzero_scalar(rng)
        pub_r = Point.base_mul(priv_r)
        pub_u = Point.base_mul(priv_u)
        h = hash_capsule_points(pub_r, pub_u)
        s = (priv_u + priv_r * h) % N
        # r + u = 0 would make the shared point infinite; astronomically unlikely, so retry.
        if (priv_r + priv_u) % N == 0 or s == 0:
            return cls.from_public_key(delegating_pk, rng)
        key_seed = (delegating_pk.point * (priv_r + priv_u)).to_bytes()
        return cls(pub_r, pub_u, s), key_seed

    def _is_valid(self) -> bool:
        h = hash_capsule_points(self.point_e, self.point_v)
        try:
            return Point.base_mul(self.signature) == self.point_v + self.point_e * h
        except UmbralError:
            return False

    # Encodings

    def to_bytes_simple(self) -> bytes:
        """E || V || s, 98 bytes; also the DEM's associated data."""
        return self.point_e.to_bytes() + self.point_v.to_bytes() + scalar_to_bytes(self.signature)

    def to_bytes(self) -> bytes:
        """umbral-pre's ``bytes(capsule)``: MessagePack [E, V, s], 105 bytes."""
        return (
            wire.array_header(3)
            + wire.bin8(self.point_e.to_bytes())
            + wire.bin8(self.point_v.to_bytes())
            + wire.bin8(scalar_to_bytes(self.signature))
        )

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Capsule:
        r = wire.Reader(data, "capsule")
        r.array(3)
        e = r.bin8(POINT_SIZE)
        v = r.bin8(POINT_SIZE)
        s = r.bin8(SCALAR_SIZE)
        r.finish()
        return cls._checked(e, v, s)

    @classmethod
    def from_bytes_simple(cls, data: bytes) -> Capsule:
        r = wire.Reader(data, "capsule")
        e = r.raw(POINT_SIZE)
        v = r.raw(POINT_SIZE)
        s = r.raw(SCALAR_SIZE)
        r.finish()
        return cls._checked(e, v, s)

    @classmethod
    def _checked(cls, e: bytes, v: bytes, s: bytes) -> Capsule:
        capsule = cls(Point.from_bytes(e), Point.from_bytes(v), scalar_from_bytes(s))
        if not capsule._is_valid():
            raise DecodeError("capsule fails its self-check (sG != V + hE)")
        return capsule

    # Opening

    def open_original(self, delegating_sk: SecretKey) -> bytes:
        try:
            return ((self.point_e + self.point_v) * delegating_sk.scalar).to_bytes()
        except UmbralError as exc:
            raise DecryptionError("capsule cannot be opened") from exc

    def open_reencrypted(
        self,
        receiving_sk: SecretKey,
        delegating_pk: PublicKey,
        cfrags: Sequence[CapsuleFrag],
    ) -> bytes:
        """Combine capsule fragments (Shamir at 0, in the exponent) into the key seed."""
        if not cfrags:
            raise DecryptionError("no capsule fragments")
        precursor = cfrags[0].precursor
        # All fragments must come from one generate_kfrags call (one precursor).
        if any(cf.precursor != precursor for cf in cfrags):
            raise DecryptionError("capsule fragments come from different kfrag sets")

        receiving_point = receiving_sk.public_key().point
        try:
            dh_point = precursor * receiving_sk.scalar
            xs = [hash_to_polynomial_arg(precursor, receiving_point, dh_point, cf.kfrag_id) for cf in cfrags]
            if len(set(xs)) != len(xs):
                raise DecryptionError("some capsule fragments are repeated")
            lambdas = _lagrange_at_zero(xs)
            e_prime = Point.sum(cf.point_e1 * lam for cf, lam in zip(cfrags, lambdas, strict=True))
            v_prime = Point.sum(cf.point_v1 * lam for cf, lam in zip(cfrags, lambdas, strict=True))
            d = hash_to_shared_secret(precursor, receiving_point, dh_point)
            h = hash_capsule_points(self.point_e, self.point_v)
            # The check that catches too few fragments, a foreign capsule, or a
            # bad fragment that slipped past verification: pk_A * s/d == hE' + V'.
            if delegating_pk.point * (self.signature * invert(d)) != e_prime * h + v_prime:
                raise DecryptionError("capsule fragments do not open this capsule")
            return ((e_prime + v_prime) * d).to_bytes()
        except DecryptionError:
            raise
        except UmbralError as exc:
            raise DecryptionError("capsule fragments do not open this capsule") from exc


def _lagrange_at_zero(xs: list[int]) -> list[int]:
    """lambda_i = prod_{j != i} x_j / (x_j - x_i), one inversion per i."""
    out = []
    for i, xi in enumerate(xs):
        num = 1
        den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % N
                den = den * (xj - xi) % N
        out.append(num * invert(den) % N)
    return out
