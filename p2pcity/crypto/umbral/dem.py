"""The data encapsulation: HKDF-SHA256 then XChaCha20-Poly1305, as umbral-pre's dem.rs.

Ciphertext = 24-byte random nonce || ChaCha20 ciphertext || 16-byte tag; the
associated data is the capsule in its simple form, so a ciphertext cannot be
moved under another capsule. The nonce is random (XChaCha's 192 bits make
collisions negligible), although each key seed is used once anyway.
"""

from __future__ import annotations

from Crypto.Cipher import ChaCha20_Poly1305

from p2pcity.crypto.umbral.curve import RandomBytes
from p2pcity.crypto.umbral.errors import DecryptionError
from p2pcity.crypto.umbral.hashing import hkdf_sha256
from p2pcity.crypto.umbral.wire import require_bytes

KEY_SIZE = 32
NONCE_SIZE = 24
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE


def derive_key(key_seed: bytes) -> bytes:
    """umbral-pre's ``kdf(seed, salt=None, info=None)``: HKDF-SHA256, 32 bytes."""
    return hkdf_sha256(key_seed, KEY_SIZE)


def encrypt(key_seed: bytes, plaintext: bytes, associated_data: bytes, rng: RandomBytes) -> bytes:
    nonce = rng(NONCE_SIZE)
    cipher = ChaCha20_Poly1305.new(key=derive_key(key_seed), nonce=nonce)
    cipher.update(associated_data)
    body, tag = cipher.encrypt_and_digest(plaintext)
    return nonce + body + tag


def decrypt(key_seed: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    ciphertext = require_bytes(ciphertext, "ciphertext")
    if len(ciphertext) < OVERHEAD:
        raise DecryptionError("ciphertext is shorter than nonce and tag")
    nonce = ciphertext[:NONCE_SIZE]
    body = ciphertext[NONCE_SIZE:-TAG_SIZE]
    tag = ciphertext[-TAG_SIZE:]
    cipher = ChaCha20_Poly1305.new(key=derive_key(key_seed), nonce=nonce)
    cipher.update(associated_data)
    try:
        return bytes(cipher.decrypt_and_verify(body, tag))
    except ValueError as exc:
        raise DecryptionError("ciphertext does not authenticate (wrong key or tampered)") from exc
