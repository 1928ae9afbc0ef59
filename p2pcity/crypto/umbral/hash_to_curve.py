"""RFC 9380 hash-to-curve for secp256k1 (suite secp256k1_XMD:SHA-256_SSWU_RO_).

Umbral needs a second generator U whose discrete log to G nobody knows; it is
``hash_to_curve(dst=b"PARAMETERS", msg=b"POINT_U")`` in umbral-pre (through
RustCrypto's k256). This runs once at import, so it is plain Python integer
arithmetic over the field, following the RFC's straight-line description.
"""

from __future__ import annotations

import hashlib

from p2pcity.crypto.umbral.curve import P, Point

# Simplified SWU works on a curve with A*B != 0, so secp256k1 (A = 0) is mapped
# through the 3-isogenous curve E': y^2 = x^3 + A'x + B' (RFC 9380, 8.7).
_A_ISO = 0x3F8731ABDD661ADCA08A5558F0F5D272E953D363CB6F0E5D405447C01A444533
_B_ISO = 1771
_Z = P - 11

# Isogeny map coefficients, lowest degree first (RFC 9380, appendix E.1).
_X_NUM = (
    0x8E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38DAAAAA8C7,
    0x07D3D4C80BC321D5B9F315CEA7FD44C5D595D2FC0BF63B92DFFF1044F17C6581,
    0x534C328D23F234E6E2A413DECA25CAECE4506144037C40314ECBD0B53D9DD262,
    0x8E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38DAAAAA88C,
)
_X_DEN = (
    0xD35771193D94918A9CA34CCBB7B640DD86CD409542F8487D9FE6B745781EB49B,
    0xEDADC6F64383DC1DF7C4B2D51B54225406D36B641F5E41BBC52A56612A8C6D14,
    1,
)
_Y_NUM = (
    0x4BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684B8E38E23C,
    0xC75E0C32D5CB7C0FA9D0A54B12A0A6D5647AB046D686DA6FDFFC90FC201D71A3,
    0x29A6194691F91A73715209EF6512E576722830A201BE2018A765E85A9ECEE931,
    0x2F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F38E38D84,
)
_Y_DEN = (
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFF93B,
    0x7A06534BB8BDB49FD5E9E6632722C2989467C1BFC8E8D978DFB425D2685C2573,
    0x6484AA716545CA2CF3A70C3FA8FE337E0A3D21162F0D6299A7BF8192BFD2A76F,
    1,
)

_L = 48  # bytes per field element: ceil((ceil(log2 p) + k) / 8) with k = 128


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380, 5.3.1, with SHA-256."""
    if len(dst) > 255:
        raise ValueError("DST longer than 255 bytes")
    ell = -(-length // 32)
    if ell > 255 or length > 65535:
        raise ValueError("requested output too long")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha256(bytes(64) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    bi = hashlib.sha256(b0 + b"\x01" + dst_prime).digest()
    out = [bi]
    for i in range(2, ell + 1):
        mixed = bytes(a ^ b for a, b in zip(b0, bi, strict=True))
        bi = hashlib.sha256(mixed + bytes([i]) + dst_prime).digest()
        out.append(bi)
    return b"".join(out)[:length]


def hash_to_field(msg: bytes, dst: bytes, count: int) -> list[int]:
    uniform = expand_message_xmd(msg, dst, count * _L)
    return [int.from_bytes(uniform[i * _L : (i + 1) * _L], "big") % P for i in range(count)]


def _is_square(x: int) -> bool:
    return x == 0 or pow(x, (P - 1) // 2, P) == 1


def _sqrt(x: int) -> int:
    # p = 3 mod 4, so a square root is x^((p+1)/4).
    return pow(x, (P + 1) // 4, P)


def _inv0(x: int) -> int:
    return pow(x, P - 2, P)


def map_to_curve_sswu(u: int) -> tuple[int, int]:
    """Simplified SWU onto E' (RFC 9380, 6.6.2), straight-line form."""
    tv1 = _inv0((_Z * _Z * pow(u, 4, P) + _Z * u * u) % P)
    # tv1 = 0 is the exceptional case the RFC handles with B / (Z * A).
    x1 = _B_ISO * _inv0(_Z * _A_ISO) if tv1 == 0 else (P - _B_ISO) * _inv0(_A_ISO) * (1 + tv1)
    x1 %= P
    gx1 = (pow(x1, 3, P) + _A_ISO * x1 + _B_ISO) % P
    x2 = _Z * u * u * x1 % P
    gx2 = (pow(x2, 3, P) + _A_ISO * x2 + _B_ISO) % P
    if _is_square(gx1):
        x, y = x1, _sqrt(gx1)
    else:
        x, y = x2, _sqrt(gx2)
    if u % 2 != y % 2:
        y = P - y
    return x, y


def _poly(coeffs: tuple[int, ...], x: int) -> int:
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % P
    return acc


def iso_map(x: int, y: int) -> tuple[int, int]:
    """The 3-isogeny E' -> secp256k1 (RFC 9380, appendix E.1)."""
    x_out = _poly(_X_NUM, x) * _inv0(_poly(_X_DEN, x)) % P
    y_out = y * _poly(_Y_NUM, x) * _inv0(_poly(_Y_DEN, x)) % P
    return x_out, y_out


def hash_to_curve(msg: bytes, dst: bytes) -> Point:
    """hash_to_curve with the random-oracle encoding (two field elements, summed)."""
    u0, u1 = hash_to_field(msg, dst, 2)
    q0 = Point.from_affine(*iso_map(*map_to_curve_sswu(u0)))
    q1 = Point.from_affine(*iso_map(*map_to_curve_sswu(u1)))
    # secp256k1 has cofactor 1, so clear_cofactor is the identity.
    return q0 + q1
