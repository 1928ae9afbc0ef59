"""The ``swarm.key`` file of the libp2p private-network spec (go-libp2p, js-libp2p, IPFS).

Format (three lines)::

    /key/swarm/psk/1.0.0/
    /base16/
    <64 hex characters>

The second line may also be ``/base64/`` (standard alphabet) or ``/bin/``
(32 raw bytes follow), as go-libp2p's ``pnet.DecodeV1PSK`` reads them; we
always write ``/base16/``. The 32 bytes are the XSalsa20 key itself, and the
same 64 hex characters are what ``p2p.psk`` in config.toml holds.
"""

from __future__ import annotations

import base64
import binascii
import re

from p2pcity.net.errors import ConfigError

HEADER = b"/key/swarm/psk/1.0.0/"
_HEX64 = re.compile(rb"[0-9a-fA-F]{64}")


def encode_swarm_key(psk_hex: str) -> bytes:
    """The spec file for a 64-hex-character key."""
    if not _HEX64.fullmatch(psk_hex.encode()):
        raise ConfigError("a swarm key is 64 hex characters (32 bytes)")
    return HEADER + b"\n/base16/\n" + psk_hex.lower().encode() + b"\n"


def decode_swarm_key(data: bytes) -> str:
    """The key (64 lowercase hex characters) of a spec ``swarm.key`` file."""
    header, _, rest = data.partition(b"\n")
    if header.rstrip(b"\r") != HEADER:
        raise ConfigError(f"not a swarm key file: the first line must be {HEADER.decode()}")
    encoding, _, body = rest.partition(b"\n")
    encoding = encoding.rstrip(b"\r")
    if encoding == b"/bin/":
        key = body[:32]
        extra = body[32:]
    elif encoding == b"/base16/":
        text = body.strip()
        if not _HEX64.fullmatch(text):
            raise ConfigError("swarm key file: /base16/ must be followed by exactly 64 hex characters")
        key, extra = bytes.fromhex(text.decode()), b""
    elif encoding == b"/base64/":
        try:
            key = base64.b64decode(body.strip(), validate=True)
        except binascii.Error as exc:
            raise ConfigError(f"swarm key file: bad base64 ({exc})") from exc
        extra = b""
    else:
        raise ConfigError(f"swarm key file: unknown encoding {encoding!r} (want /base16/, /base64/ or /bin/)")
    if len(key) != 32 or extra.strip():
        raise ConfigError(f"swarm key file: the key must be exactly 32 bytes, got {len(key)}")
    return key.hex()
