"""Key fragments: generation by the delegator, verification by the proxy.

The delegator splits a re-encryption key into ``shares`` Shamir shares with
threshold t. The polynomial's constant term is a/d, where a is her secret and
d is a DH-derived secret only the receiver can recompute, so the proxies
together still cannot decrypt. Each share point x_i is hashed from that DH
too, so proxies cannot even run the interpolation without the receiver.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pcity.crypto.umbral import wire
from p2pcity.crypto.umbral.curve import (
    POINT_SIZE,
    SCALAR_SIZE,
    N,
    Point,
    RandomBytes,
    default_rng,
    invert,
    random_nonzero_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from p2pcity.crypto.umbral.errors import DecodeError, UmbralError, VerificationError
from p2pcity.crypto.umbral.hashing import (
    hash_to_polynomial_arg,
    hash_to_shared_secret,
    kfrag_signature_message,
)
from p2pcity.crypto.umbral.keys import SIGNATURE_SIZE, PublicKey, SecretKey, Signature, Signer
from p2pcity.crypto.umbral.params import U

KFRAG_ID_SIZE = 32
# [params [U], id, key, precursor, [commitment, sig, sig, bool, bool]]
KFRAG_SIZE = (
    1
    + (1 + 2 + POINT_SIZE)
    + 2 * (2 + SCALAR_SIZE)
    + (2 + POINT_SIZE)
    + (1 + (2 + POINT_SIZE) + 2 * (2 + SIGNATURE_SIZE) + 2)
)


@dataclass(frozen=True, slots=True)
class KeyFrag:
    """A key fragment as received from the network: not yet trusted."""

    kfrag_id: bytes
    key: int
    precursor: Point
    commitment: Point
    signature_for_proxy: Signature
    signature_for_receiver: Signature
    delegating_key_signed: bool
    receiving_key_signed: bool

    def to_bytes(self) -> bytes:
        """umbral-pre's ``bytes(kfrag)`` (MessagePack), 310 bytes."""
        return b"".join(
            (
                wire.array_header(5),
                wire.array_header(1),
                wire.bin8(U.to_bytes()),
                wire.bin8(self.kfrag_id),
                wire.bin8(scalar_to_bytes(self.key)),
                wire.bin8(self.precursor.to_bytes()),
                wire.array_header(5),
                wire.bin8(self.commitment.to_bytes()),
                wire.bin8(self.signature_for_proxy.to_bytes()),
                wire.bin8(self.signature_for_receiver.to_bytes()),
                wire.boolean(self.delegating_key_signed),
                wire.boolean(self.receiving_key_signed),
            )
        )

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyFrag:
        r = wire.Reader(data, "kfrag")
        r.array(5)
        r.array(1)
        # umbral-pre carries the parameters in every kfrag; there is only one
        # valid value, and accepting another would let a kfrag commit to a
        # different U than the one capsule fragments are checked against.
        if r.bin8(POINT_SIZE) != U.to_bytes():
            raise DecodeError("kfrag: unknown scheme parameters")
        kfrag_id = r.bin8(KFRAG_ID_SIZE)
        key = r.bin8(SCALAR_SIZE)
        precursor = r.bin8(POINT_SIZE)
        r.array(5)
        commitment = r.bin8(POINT_SIZE)
        sig_proxy = r.bin8(SIGNATURE_SIZE)
        sig_receiver = r.bin8(SIGNATURE_SIZE)
        dk_signed = r.boolean()
        rk_signed = r.boolean()
        r.finish()
        return cls(
            kfrag_id=kfrag_id,
            # A zero share would commit to infinity; honest generation never makes one.
            key=scalar_from_bytes(key),
            precursor=Point.from_bytes(precursor),
            commitment=Point.from_bytes(commitment),
            signature_for_proxy=Signature.from_bytes(sig_proxy),
            signature_for_receiver=Signature.from_bytes(sig_receiver),
            delegating_key_signed=dk_signed,
            receiving_key_signed=rk_signed,
        )

    def verify(
        self,
        verifying_pk: PublicKey,
        delegating_pk: PublicKey | None = None,
        receiving_pk: PublicKey | None = None,
    ) -> VerifiedKeyFrag:
        """The proxy's check, done once when the fragment arrives.

        Raises ``VerificationError``. When both keys are given, the signature
        the receiver will check (copied into every capsule fragment) is
        verified as well, so a delegator cannot hand a proxy a fragment whose
        capsule fragments will later look forged (stricter than umbral-pre,
        which never fails on kfrags it made itself).
        """
        # The commitment binds the share to U; the signature covers the commitment.
        if self.key % N == 0 or self.commitment != U * self.key:
            raise VerificationError("kfrag commitment does not match its key")
        # A key the delegator signed must be supplied to check the signature.
        if self.delegating_key_signed and delegating_pk is None:
            raise VerificationError("kfrag signs the delegating key, but none was given")
        if self.receiving_key_signed and receiving_pk is None:
            raise VerificationError("kfrag signs the receiving key, but none was given")
        dk = delegating_pk.to_bytes() if delegating_pk is not None and self.delegating_key_signed else None
        rk = receiving_pk.to_bytes() if receiving_pk is not None and self.receiving_key_signed else None
        message = kfrag_signature_message(self.kfrag_id, self.commitment, self.precursor, dk, rk)
        if not self.signature_for_proxy.verify(verifying_pk, message):
            raise VerificationError("kfrag signature does not verify")
        if delegating_pk is not None and receiving_pk is not None:
            full = kfrag_signature_message(
                self.kfrag_id,
                self.commitment,
                self.precursor,
                delegating_pk.to_bytes(),
                receiving_pk.to_bytes(),
            )
            # Same message and same signature bytes: already checked just above.
            checked = full == message and self.signature_for_receiver == self.signature_for_proxy
            if not checked and not self.signature_for_receiver.verify(verifying_pk, full):
                raise VerificationError("kfrag signature for the receiver does not verify")
        return VerifiedKeyFrag(self)

    def skip_verification(self) -> VerifiedKeyFrag:
        """For fragments read back from our own store, already verified once."""
        return VerifiedKeyFrag(self)


@dataclass(frozen=True, slots=True)
class VerifiedKeyFrag:
    """A key fragment fit for ``reencrypt``; only ``verify``, ``skip_verification``
    and ``generate_kfrags`` should make one."""

    kfrag: KeyFrag

    def to_bytes(self) -> bytes:
        return self.kfrag.to_bytes()

    def __bytes__(self) -> bytes:
        return self.kfrag.to_bytes()

    def unverify(self) -> KeyFrag:
        return self.kfrag


def generate_kfrags(
    delegating_sk: SecretKey,
    receiving_pk: PublicKey,
    signer: Signer,
    threshold: int,
    shares: int,
    sign_delegating_key: bool = True,
    sign_receiving_key: bool = True,
    rng: RandomBytes | None = None,
) -> list[VerifiedKeyFrag]:
    """Split the re-encryption key a -> b into ``shares`` fragments, any ``threshold`` suffice."""
    if not 1 <= threshold <= shares:
        raise UmbralError(f"need 1 <= threshold <= shares, got {threshold} of {shares}")
    rand = default_rng(rng)
    receiving_point = receiving_pk.point
    delegating_pk = delegating_sk.public_key()

    # Ephemeral DH with the receiver: the precursor travels in every fragment,
    # the DH point stays secret and keys d and the share indices.
    private_precursor = random_nonzero_scalar(rand)
    precursor = Point.base_mul(private_precursor)
    dh_point = receiving_point * private_precursor
    d = hash_to_shared_secret(precursor, receiving_point, dh_point)
    coefficients = [delegating_sk.scalar * invert(d) % N]
    coefficients += [random_nonzero_scalar(rand) for _ in range(threshold - 1)]

    dk = delegating_pk.to_bytes()
    rk = receiving_pk.to_bytes()
    out: list[VerifiedKeyFrag] = []
    used_indices: set[int] = set()
    while len(out) < shares:
        kfrag_id = rand(KFRAG_ID_SIZE)
        share_index = hash_to_polynomial_arg(precursor, receiving_point, dh_point, kfrag_id)
        key = _poly_eval(coefficients, share_index)
        # A repeated index adds no share; a zero share has no commitment. Both
        # have probability ~2^-256 with a sound rng.
        if key == 0 or share_index in used_indices:
            continue
        used_indices.add(share_index)
        commitment = U * key
        message_receiver = kfrag_signature_message(kfrag_id, commitment, precursor, dk, rk)
        message_proxy = kfrag_signature_message(
            kfrag_id,
            commitment,
            precursor,
            dk if sign_delegating_key else None,
            rk if sign_receiving_key else None,
        )
        signature_for_receiver = signer.sign(message_receiver)
        # Signing is deterministic (RFC 6979), so equal messages share one signature.
        signature_for_proxy = (
            signature_for_receiver if message_proxy == message_receiver else signer.sign(message_proxy)
        )
        kfrag = KeyFrag(
            kfrag_id=kfrag_id,
            key=key,
            precursor=precursor,
            commitment=commitment,
            signature_for_proxy=signature_for_proxy,
            signature_for_receiver=signature_for_receiver,
            delegating_key_signed=sign_delegating_key,
            receiving_key_signed=sign_receiving_key,
        )
        out.append(VerifiedKeyFrag(kfrag))
    return out


def _poly_eval(coefficients: list[int], x: int) -> int:
    result = 0
    for c in reversed(coefficients):
        result = (result * x + c) % N
    return result
