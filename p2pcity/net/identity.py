"""The node's libp2p identity: an Ed25519 key file, and peer-id helpers.

The key file is the libp2p spec's ``PrivateKey`` protobuf (peer-ids spec:
``Type = 1`` (Ed25519), ``Data`` = the 64 bytes seed || public key), the form
go-libp2p (``crypto.MarshalPrivateKey``) and js-libp2p
(``privateKeyToProtobuf``) write and read; written atomically with mode 0600.

# py-libp2p 0.8.1: ``Ed25519PrivateKey.to_bytes`` is the 32-byte seed alone, so
# ``save_identity`` writes ``Data`` = 32 bytes, which go and js refuse. We
# still read such files (every p2pcity key created before this form) and
# encode the spec form ourselves.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from libp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey, create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType, PrivateKey
from libp2p.peer.id import ID

from p2pcity._files import write_private
from p2pcity.net.errors import ConfigError

log = logging.getLogger(__name__)


def create_key_file(path: Path) -> str:
    """Create a new Ed25519 key file (refuses to overwrite) and return its peer id."""
    key_pair = create_new_key_pair()
    _write_atomically(path, encode_private_key(key_pair))
    log.info("created libp2p identity %s in %s", ID.from_pubkey(key_pair.public_key), path)
    return ID.from_pubkey(key_pair.public_key).to_base58()


def load_key(path: Path) -> KeyPair:
    """Load an Ed25519 key file, with a clear error if it is unreadable or corrupt."""
    try:
        raw = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        log.warning("key file %s has mode %o; it should be 0600", path, mode)
    return decode_private_key(raw, f"key file {path}")


def encode_private_key(key_pair: KeyPair) -> bytes:
    """The spec ``PrivateKey`` protobuf of an Ed25519 key: 08 01 12 40 <seed> <public key>."""
    seed = key_pair.private_key.to_bytes()
    public = key_pair.public_key.to_bytes()
    if key_pair.private_key.get_type() != KeyType.Ed25519 or len(seed) != 32:
        raise ConfigError("p2pcity key files hold Ed25519 keys only")
    # Fields in number order, as the spec requires for a deterministic encoding.
    return bytes([0x08, KeyType.Ed25519.value, 0x12, 64]) + seed + public


def decode_private_key(raw: bytes, where: str = "key") -> KeyPair:
    """An Ed25519 key pair from the spec protobuf (64-byte Data) or py-libp2p's (32-byte seed)."""
    try:
        message = PrivateKey.deserialize_from_protobuf(raw)
        key_type, data = message.key_type, bytes(message.data)
    except Exception as exc:  # protobuf raises its own DecodeError; any failure means corrupt
        raise ConfigError(f"{where} is corrupt: not a libp2p protobuf private key ({exc})") from exc
    if not data:
        raise ConfigError(f"{where} is corrupt: it holds no key")
    if key_type != KeyType.Ed25519.value:
        name = KeyType(key_type).name if key_type in KeyType._value2member_map_ else key_type
        raise ConfigError(f"{where} holds a {name} key; p2pcity needs Ed25519")
    if len(data) not in (32, 64):
        raise ConfigError(
            f"{where} is corrupt: an Ed25519 key is 64 bytes (or a 32-byte seed), got {len(data)}"
        )
    private_key = Ed25519PrivateKey.from_bytes(data[:32])
    public_key = private_key.get_public_key()
    # The spec form repeats the public key; one that does not match the seed is not a key.
    if len(data) == 64 and data[32:] != public_key.to_bytes():
        raise ConfigError(f"{where} is corrupt: its public key does not match its seed")
    return KeyPair(private_key, public_key)


def key_file_is_spec_form(path: Path) -> bool:
    """True if the key file is the 64-byte spec form, False for a py-libp2p 32-byte seed."""
    load_key(path)  # a clear ConfigError for a missing or corrupt file
    return len(PrivateKey.deserialize_from_protobuf(path.read_bytes()).data) == 64


def load_or_create_key(path: Path) -> KeyPair:
    """Load the key file, creating it on first start."""
    if not path.exists():
        create_key_file(path)
    return load_key(path)


def peer_id_from_key_file(path: Path) -> str:
    """The peer id (``12D3KooW...``) of a key file, for genesis and config files."""
    return ID.from_pubkey(load_key(path).public_key).to_base58()


def peer_id_from_public_key(public_key: bytes) -> str:
    """The peer id of a raw 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise ConfigError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    try:
        key = Ed25519PublicKey.from_bytes(public_key)
    except Exception as exc:
        raise ConfigError(f"not an Ed25519 public key: {exc}") from exc
    return ID.from_pubkey(key).to_base58()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (mode 0600) via a temp file and rename."""
    if path.exists():
        raise ConfigError(f"key file {path} already exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_private(path, data)
    except OSError as exc:
        raise ConfigError(f"cannot write key file {path}: {exc.strerror or exc}") from exc
