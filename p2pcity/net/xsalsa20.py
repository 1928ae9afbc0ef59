"""XSalsa20, the stream cipher of the libp2p private-network (pnet) spec.

XSalsa20(key, nonce24) is Salsa20 keyed with HSalsa20(key, nonce[:16]) and
nonced with nonce[16:] (Bernstein, "Extending the Salsa20 nonce", 2008).
PyNaCl 1.6 exposes neither ``crypto_stream_xsalsa20`` nor
``crypto_core_hsalsa20``, and pycryptodome's Salsa20 takes 8-byte nonces only,
so HSalsa20 (once per connection, ~20 us) is written here and the keystream
comes from pycryptodome's C Salsa20, which keeps its position between calls:
one cipher per direction for the connection's lifetime, never re-keyed.

Checked against libsodium in tests/net/test_pnet.py: NaCl's published HSalsa20
and stream vectors, and SecretBox (XSalsa20-Poly1305) ciphertexts.
"""

from __future__ import annotations

import struct

from Crypto.Cipher import Salsa20

KEY_SIZE = 32
NONCE_SIZE = 24
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_MASK = 0xFFFFFFFF


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _quarter(x: list[int], a: int, b: int, c: int, d: int) -> None:
    x[b] ^= _rotl((x[a] + x[d]) & _MASK, 7)
    x[c] ^= _rotl((x[b] + x[a]) & _MASK, 9)
    x[d] ^= _rotl((x[c] + x[b]) & _MASK, 13)
    x[a] ^= _rotl((x[d] + x[c]) & _MASK, 18)


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """The 32-byte HSalsa20 output: Salsa20's 20 rounds without the final addition."""
    if len(key) != KEY_SIZE or len(nonce16) != 16:
        raise ValueError("HSalsa20 takes a 32-byte key and a 16-byte input")
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", nonce16)
    x = [_SIGMA[0], *k[:4], _SIGMA[1], *n, _SIGMA[2], *k[4:], _SIGMA[3]]
    for _ in range(10):  # 10 double rounds: columns, then rows
        _quarter(x, 0, 4, 8, 12)
        _quarter(x, 5, 9, 13, 1)
        _quarter(x, 10, 14, 2, 6)
        _quarter(x, 15, 3, 7, 11)
        _quarter(x, 0, 1, 2, 3)
        _quarter(x, 5, 6, 7, 4)
        _quarter(x, 10, 11, 8, 9)
        _quarter(x, 15, 12, 13, 14)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


class XSalsa20:
    """One direction of a connection: XOR with the keystream, continuing where the last call stopped."""

    def __init__(self, key: bytes, nonce: bytes) -> None:
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"XSalsa20 takes a {NONCE_SIZE}-byte nonce, got {len(nonce)}")
        self._cipher = Salsa20.new(key=hsalsa20(key, nonce[:16]), nonce=nonce[16:])

    def xor(self, data: bytes) -> bytes:
        return self._cipher.encrypt(data)  # Salsa20: encrypt == decrypt
