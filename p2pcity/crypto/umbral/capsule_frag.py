"""Capsule fragments: re-encryption by a proxy, with its proof, and the receiver's check.

A proxy holding share rk turns the capsule (E, V) into (E1, V1) = (rk E, rk V)
and proves, Chaum-Pedersen style, that the same rk also opens the commitment
U1 = rk U the delegator signed: for random t it publishes E2 = tE, V2 = tV,
U2 = tU and z = t + h rk, h hashing all nine points. The receiver checks
zE = E2 + hE1, zV = V2 + hV1, zU = U2 + hU1 and the delegator's signature
over U1, so a proxy cannot hand out garbage undetected.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pcity.crypto.umbral import wire
from p2pcity.crypto.umbral.capsule import Capsule
from p2pcity.crypto.umbral.curve import (
    POINT_SIZE,
    SCALAR_SIZE,
    N,
    Point,
    RandomBytes,
    default_rng,
    random_nonzero_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from p2pcity.crypto.umbral.errors import UmbralError, VerificationError
from p2pcity.crypto.umbral.hashing import hash_to_cfrag_verification, kfrag_signature_message
from p2pcity.crypto.umbral.key_frag import KFRAG_ID_SIZE, VerifiedKeyFrag
from p2pcity.crypto.umbral.keys import SIGNATURE_SIZE, PublicKey, Signature
from p2pcity.crypto.umbral.params import U

CFRAG_SIMPLE_SIZE = 7 * POINT_SIZE + KFRAG_ID_SIZE + SCALAR_SIZE + SIGNATURE_SIZE  # 359
# [E1, V1, id, precursor, [E2, V2, U1, U2, z, signature]]
CFRAG_SIZE = 2 + 7 * (2 + POINT_SIZE) + 2 * (2 + SCALAR_SIZE) + (2 + SIGNATURE_SIZE)  # 381


@dataclass(frozen=True, slots=True)
class CapsuleFragProof:
    point_e2: Point
    point_v2: Point
    kfrag_commitment: Point
    kfrag_pok: Point
    signature: int
    kfrag_signature: Signature


@dataclass(frozen=True, slots=True)
class CapsuleFrag:
    """A capsule fragment as received from a proxy: not yet trusted."""

    point_e1: Point
    point_v1: Point
    kfrag_id: bytes
    precursor: Point
    proof: CapsuleFragProof

    def _fields(self) -> tuple[bytes, ...]:
        p = self.proof
        return (
            self.point_e1.to_bytes(),
            self.point_v1.to_bytes(),
            self.kfrag_id,
            self.precursor.to_bytes(),
            p.point_e2.to_bytes(),
            p.point_v2.to_bytes(),
            p.kfrag_commitment.to_bytes(),
            p.kfrag_pok.to_bytes(),
            scalar_to_bytes(p.signature),
            p.kfrag_signature.to_bytes(),
        )

    def to_bytes(self) -> bytes:
        """umbral-pre's ``bytes(cfrag)`` (MessagePack), 381 bytes."""
        f = [wire.bin8(x) for x in self._fields()]
        return wire.array_header(5) + b"".join(f[:4]) + wire.array_header(6) + b"".join(f[4:])

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def to_bytes_simple(self) -> bytes:
        """The fields concatenated in the same order, 359 bytes."""
        return b"".join(self._fields())

    @classmethod
    def from_bytes(cls, data: bytes) -> CapsuleFrag:
        r = wire.Reader(data, "cfrag")
        r.array(5)
        head = [r.bin8(size) for size in (POINT_SIZE, POINT_SIZE, KFRAG_ID_SIZE, POINT_SIZE)]
        r.array(6)
        tail = [r.bin8(size) for size in _PROOF_SIZES]
        r.finish()
        return cls._from_fields(head + tail)

    @classmethod
    def from_bytes_simple(cls, data: bytes) -> CapsuleFrag:
        r = wire.Reader(data, "cfrag")
        fields = [r.raw(size) for size in (POINT_SIZE, POINT_SIZE, KFRAG_ID_SIZE, POINT_SIZE)]
        fields += [r.raw(size) for size in _PROOF_SIZES]
        r.finish()
        return cls._from_fields(fields)

    @classmethod
    def _from_fields(cls, f: list[bytes]) -> CapsuleFrag:
        proof = CapsuleFragProof(
            point_e2=Point.from_bytes(f[4]),
            point_v2=Point.from_bytes(f[5]),
            kfrag_commitment=Point.from_bytes(f[6]),
            kfrag_pok=Point.from_bytes(f[7]),
            # z = t + h*rk is zero with probability 2^-256 for an honest proxy.
            signature=scalar_from_bytes(f[8]),
            kfrag_signature=Signature.from_bytes(f[9]),
        )
        return cls(Point.from_bytes(f[0]), Point.from_bytes(f[1]), f[2], Point.from_bytes(f[3]), proof)

    def verify(
        self,
        capsule: Capsule,
        verifying_pk: PublicKey,
        delegating_pk: PublicKey,
        receiving_pk: PublicKey,
    ) -> VerifiedCapsuleFrag:
        """The receiver's check of one fragment; raises ``VerificationError``."""
        p = self.proof
        # The delegator signed this share's commitment for exactly these two keys.
        message = kfrag_signature_message(
            self.kfrag_id,
            p.kfrag_commitment,
            self.precursor,
            delegating_pk.to_bytes(),
            receiving_pk.to_bytes(),
        )
        if not p.kfrag_signature.verify(verifying_pk, message):
            raise VerificationError("cfrag: the delegator's kfrag signature does not verify")
        e, v = capsule.point_e, capsule.point_v
        h = hash_to_cfrag_verification(
            [e, self.point_e1, p.point_e2, v, self.point_v1, p.point_v2, U, p.kfrag_commitment, p.kfrag_pok]
        )
        z = p.signature
        # The same rk re-encrypted E and V and opens the signed commitment U1.
        try:
            ok = (
                e * z == p.point_e2 + self.point_e1 * h
                and v * z == p.point_v2 + self.point_v1 * h
                and U * z == p.kfrag_pok + p.kfrag_commitment * h
            )
        except UmbralError:
            ok = False
        if not ok:
            raise VerificationError("cfrag: re-encryption proof does not verify")
        return VerifiedCapsuleFrag(self)

    def skip_verification(self) -> VerifiedCapsuleFrag:
        """Only for fragments this process made itself or has verified before."""
        return VerifiedCapsuleFrag(self)


_PROOF_SIZES = (POINT_SIZE, POINT_SIZE, POINT_SIZE, POINT_SIZE, SCALAR_SIZE, SIGNATURE_SIZE)


@dataclass(frozen=True, slots=True)
class VerifiedCapsuleFrag:
    """A capsule fragment fit for ``decrypt_reencrypted``."""

    cfrag: CapsuleFrag

    def to_bytes(self) -> bytes:
        return self.cfrag.to_bytes()

    def __bytes__(self) -> bytes:
        return self.cfrag.to_bytes()

    def to_bytes_simple(self) -> bytes:
        return self.cfrag.to_bytes_simple()

    def unverify(self) -> CapsuleFrag:
        return self.cfrag


def reencrypt(
    capsule: Capsule, verified_kfrag: VerifiedKeyFrag, rng: RandomBytes | None = None
) -> VerifiedCapsuleFrag:
    """The proxy's work: re-encrypt ``capsule`` with one key fragment, with the proof."""
    if not isinstance(verified_kfrag, VerifiedKeyFrag):
        raise TypeError("reencrypt needs a VerifiedKeyFrag (KeyFrag.verify() first)")
    kfrag = verified_kfrag.kfrag
    rand = default_rng(rng)
    rk = kfrag.key
    e, v = capsule.point_e, capsule.point_v
    e1 = e * rk
    v1 = v * rk
    u1 = kfrag.commitment
    while True:
        t = random_nonzero_scalar(rand)
        e2, v2, u2 = e * t, v * t, U * t
        h = hash_to_cfrag_verification([e, e1, e2, v, v1, v2, U, u1, u2])
        z = (t + rk * h) % N
        if z:  # a zero response would not encode; redraw t (probability 2^-256)
            break
    proof = CapsuleFragProof(
        point_e2=e2,
        point_v2=v2,
        kfrag_commitment=u1,
        kfrag_pok=u2,
        signature=z,
        kfrag_signature=kfrag.signature_for_receiver,
    )
    return VerifiedCapsuleFrag(CapsuleFrag(e1, v1, kfrag.kfrag_id, kfrag.precursor, proof))
