"""Hash-to-scalar with domain separation, HKDF-SHA256, and umbral-pre's hashed messages.

Every hash is SHA-256 over ``len(dst) as u32 BE || dst || parts...``; points
enter in compressed form. umbral-pre reduces the digest with k256's
``reduce_nonzero``, i.e. ``digest mod (n - 1) + 1``, which is never zero;
plain ``mod n`` would give different scalars and break compatibility.
"""

from __future__ import annotations

import hashlib
import hmac

from p2pcity.crypto.umbral.curve import N, Point

# Domain separation tags, as in umbral-pre's hashing_ds.rs.
DST_CAPSULE_POINTS = b"CAPSULE_POINTS"
DST_POLYNOMIAL_ARG = b"POLYNOMIAL_ARG"
DST_SHARED_SECRET = b"SHARED_SECRET"
DST_CFRAG_VERIFICATION = b"CFRAG_VERIFICATION"

_HASH_SIZE = 32


def hash_to_scalar(dst: bytes, *parts: bytes | Point) -> int:
    """A nonzero scalar from ``parts`` (bytes as they are, points compressed)."""
    h = hashlib.sha256(len(dst).to_bytes(4, "big"))
    h.update(dst)
    for part in parts:
        h.update(part.to_bytes() if isinstance(part, Point) else part)
    return int.from_bytes(h.digest(), "big") % (N - 1) + 1


def hash_capsule_points(e: Point, v: Point) -> int:
    return hash_to_scalar(DST_CAPSULE_POINTS, e, v)


def hash_to_polynomial_arg(precursor: Point, pubkey: Point, dh_point: Point, kfrag_id: bytes) -> int:
    return hash_to_scalar(DST_POLYNOMIAL_ARG, precursor, pubkey, dh_point, kfrag_id)


def hash_to_shared_secret(precursor: Point, pubkey: Point, dh_point: Point) -> int:
    return hash_to_scalar(DST_SHARED_SECRET, precursor, pubkey, dh_point)


def hash_to_cfrag_verification(points: list[Point]) -> int:
    return hash_to_scalar(DST_CFRAG_VERIFICATION, *points)


def kfrag_signature_message(
    kfrag_id: bytes,
    commitment: Point,
    precursor: Point,
    delegating_pk: bytes | None,
    receiving_pk: bytes | None,
) -> bytes:
    """What the delegator signs for a key fragment; a key left out is a single 0x00."""
    parts = [kfrag_id, commitment.to_bytes(), precursor.to_bytes()]
    for pk in (delegating_pk, receiving_pk):
        parts.append(b"\x00" if pk is None else b"\x01" + pk)
    return b"".join(parts)


def hkdf_sha256(ikm: bytes, length: int, info: bytes = b"", salt: bytes = b"") -> bytes:
    """RFC 5869 with SHA-256; an empty salt means HashLen zero bytes, as the RFC says."""
    if length > 255 * _HASH_SIZE:
        raise ValueError("HKDF output too long")
    prk = hmac.digest(salt or bytes(_HASH_SIZE), ikm, "sha256")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]
