"""Umbral threshold proxy re-encryption, byte-compatible with NuCypher's umbral-pre 0.11.

Owns: secp256k1 keys and ECDSA signatures in Umbral's encodings, capsules
(KEM), key fragments, capsule fragments with their re-encryption proofs, the
XChaCha20-Poly1305 DEM, and ``encrypt_to``/``decrypt_from`` for sealing small
secrets (key fragments) to a proxy. Pure functions over bytes: randomness is an
optional ``rng`` argument (``os.urandom`` by default), there is no I/O.

Imports: coincurve (libsecp256k1), pycryptodome and the standard library;
nothing else of p2pcity, and never trio, libp2p or rocksdict.

Encodings: ``bytes(obj)`` / ``from_bytes`` is umbral-pre's MessagePack form
(capsule 105, kfrag 310, cfrag 381 bytes); capsules and cfrags also have
umbral-pre's ``to_bytes_simple`` form (98, 359). Decoders are strict: one
encoding per object, and every failure is ``DecodeError``.

Errors: everything a caller can provoke with bad input is an ``UmbralError``
(a ``ValueError``): ``DecodeError``, ``VerificationError``, ``DecryptionError``.

Stricter than umbral-pre, never looser: decoders take only the canonical
MessagePack spelling, only umbral-pre's one parameter point U in kfrags, and
no zero scalar where an honest party makes one with probability 2^-256
(capsule s, kfrag key, cfrag z); ``KeyFrag.verify`` given both keys also checks
the signature the receiver will check, so a delegator cannot frame a proxy.

Known limits: scalar arithmetic uses Python ints, which are not constant time
(point multiplication, in libsecp256k1, is). Signatures are deterministic
(RFC 6979) where umbral-pre randomises them; both verify each other's.
umbral-pre's ``ReencryptionEvidence`` (fraud proofs) is not implemented.
"""

from p2pcity.crypto.umbral.capsule import CAPSULE_SIMPLE_SIZE, CAPSULE_SIZE, Capsule
from p2pcity.crypto.umbral.capsule_frag import (
    CFRAG_SIMPLE_SIZE,
    CFRAG_SIZE,
    CapsuleFrag,
    VerifiedCapsuleFrag,
)
from p2pcity.crypto.umbral.curve import RandomBytes
from p2pcity.crypto.umbral.errors import (
    DecodeError,
    DecryptionError,
    UmbralError,
    VerificationError,
)
from p2pcity.crypto.umbral.key_frag import KFRAG_SIZE, KeyFrag, VerifiedKeyFrag
from p2pcity.crypto.umbral.keys import (
    PublicKey,
    SecretKey,
    SecretKeyFactory,
    Signature,
    Signer,
)
from p2pcity.crypto.umbral.pre import (
    decrypt_from,
    decrypt_original,
    decrypt_reencrypted,
    encrypt,
    encrypt_to,
    generate_kfrags,
    reencrypt,
)

__all__ = [
    "CAPSULE_SIMPLE_SIZE",
    "CAPSULE_SIZE",
    "CFRAG_SIMPLE_SIZE",
    "CFRAG_SIZE",
    "KFRAG_SIZE",
    "Capsule",
    "CapsuleFrag",
    "DecodeError",
    "DecryptionError",
    "KeyFrag",
    "PublicKey",
    "RandomBytes",
    "SecretKey",
    "SecretKeyFactory",
    "Signature",
    "Signer",
    "UmbralError",
    "VerificationError",
    "VerifiedCapsuleFrag",
    "VerifiedKeyFrag",
    "decrypt_from",
    "decrypt_original",
    "decrypt_reencrypted",
    "encrypt",
    "encrypt_to",
    "generate_kfrags",
    "reencrypt",
]
