"""The top-level API: encrypt, delegate, re-encrypt, decrypt; and ECIES-style helpers.

Who calls what:
- data owner: ``encrypt`` (or ``encrypt_to``), ``generate_kfrags``;
- proxy (validator): ``KeyFrag.from_bytes(b).verify(...)`` once per grant,
  ``reencrypt`` per request;
- grantee: ``CapsuleFrag.from_bytes(b).verify(...)`` per fragment,
  ``decrypt_reencrypted`` with ``threshold`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from p2pcity.crypto.umbral import dem
from p2pcity.crypto.umbral.capsule import CAPSULE_SIMPLE_SIZE, Capsule
from p2pcity.crypto.umbral.capsule_frag import VerifiedCapsuleFrag, reencrypt
from p2pcity.crypto.umbral.curve import RandomBytes, default_rng
from p2pcity.crypto.umbral.errors import DecodeError
from p2pcity.crypto.umbral.key_frag import generate_kfrags
from p2pcity.crypto.umbral.keys import PublicKey, SecretKey
from p2pcity.crypto.umbral.wire import require_bytes

__all__ = [
    "decrypt_from",
    "decrypt_original",
    "decrypt_reencrypted",
    "encrypt",
    "encrypt_to",
    "generate_kfrags",
    "reencrypt",
]


def encrypt(
    delegating_pk: PublicKey, plaintext: bytes, rng: RandomBytes | None = None
) -> tuple[Capsule, bytes]:
    """A capsule for ``delegating_pk`` and the DEM ciphertext (plaintext + 40 bytes)."""
    rand = default_rng(rng)
    capsule, key_seed = Capsule.from_public_key(delegating_pk, rand)
    return capsule, dem.encrypt(key_seed, plaintext, capsule.to_bytes_simple(), rand)


def decrypt_original(delegating_sk: SecretKey, capsule: Capsule, ciphertext: bytes) -> bytes:
    """The owner opens her own capsule; raises ``DecryptionError``."""
    key_seed = capsule.open_original(delegating_sk)
    return dem.decrypt(key_seed, ciphertext, capsule.to_bytes_simple())


def decrypt_reencrypted(
    receiving_sk: SecretKey,
    delegating_pk: PublicKey,
    capsule: Capsule,
    verified_cfrags: Sequence[VerifiedCapsuleFrag],
    ciphertext: bytes,
) -> bytes:
    """The grantee combines ``threshold`` verified fragments; raises ``DecryptionError``.

    Fewer than threshold fragments, fragments of another capsule or another
    grant fail the capsule check inside ``open_reencrypted``.
    """
    if not all(isinstance(vcf, VerifiedCapsuleFrag) for vcf in verified_cfrags):
        raise TypeError("decrypt_reencrypted needs VerifiedCapsuleFrag (CapsuleFrag.verify())")
    cfrags = [vcf.cfrag for vcf in verified_cfrags]
    key_seed = capsule.open_reencrypted(receiving_sk, delegating_pk, cfrags)
    return dem.decrypt(key_seed, ciphertext, capsule.to_bytes_simple())


def encrypt_to(
    public_key: PublicKey, data: bytes, rng: RandomBytes | None = None, associated_data: bytes = b""
) -> bytes:
    """ECIES-like: ``capsule.to_bytes_simple() || DEM ciphertext``, 138 bytes of overhead.

    This is plain Umbral encryption in one blob (umbral-pre's
    ``decrypt_original`` opens it when ``associated_data`` is empty), used to
    seal each key fragment to its proxy's PRE key. ``associated_data`` is
    authenticated, not encrypted: :func:`decrypt_from` opens the blob only
    given exactly the same bytes, which is how a sealed key fragment is bound
    to the one grant it was made for. A key used as a recipient here must
    never also delegate with ``generate_kfrags``, or the proxies of that
    delegation could re-encrypt these blobs.
    """
    rand = default_rng(rng)
    capsule, key_seed = Capsule.from_public_key(public_key, rand)
    simple = capsule.to_bytes_simple()
    # The capsule has a fixed size, so capsule || associated data splits one way only.
    return simple + dem.encrypt(key_seed, data, simple + associated_data, rand)


def decrypt_from(secret_key: SecretKey, blob: bytes, associated_data: bytes = b"") -> bytes:
    """Open an ``encrypt_to`` blob sealed with the same ``associated_data``;
    raises ``DecodeError`` or ``DecryptionError`` (also for any other associated data)."""
    blob = require_bytes(blob, "blob")
    if len(blob) < CAPSULE_SIMPLE_SIZE + dem.OVERHEAD:
        raise DecodeError("blob is shorter than a capsule and the DEM overhead")
    simple = blob[:CAPSULE_SIMPLE_SIZE]
    capsule = Capsule.from_bytes_simple(simple)
    key_seed = capsule.open_original(secret_key)
    return dem.decrypt(
        key_seed, blob[CAPSULE_SIMPLE_SIZE:], simple + require_bytes(associated_data, "associated data")
    )
