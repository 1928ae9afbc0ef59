"""The node's libp2p identity: an Ed25519 key file, and peer-id helpers.

The key file holds the libp2p protobuf encoding of the private key (the format
of ``libp2p.identity_utils.save_identity``), written atomically with mode 0600.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from libp2p.crypto.ed25519 import Ed25519PublicKey, create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from p2pcity.net.errors import ConfigError

log = logging.getLogger(__name__)


def create_key_file(path: Path) -> str:
    """Create a new Ed25519 key file (refuses to overwrite) and return its peer id."""
    key_pair = create_new_key_pair()
    _write_atomically(path, key_pair.private_key.serialize())
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
    try:
        private_key = deserialize_private_key(raw)
        public_key = private_key.get_public_key()
    except Exception as exc:  # protobuf, nacl and lookup errors alike
        raise ConfigError(f"key file {path} is corrupt: not a libp2p protobuf private key ({exc})") from exc
    if private_key.get_type() != KeyType.Ed25519:
        raise ConfigError(f"key file {path} holds a {private_key.get_type().name} key; p2pcity needs Ed25519")
    return KeyPair(private_key, public_key)


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
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write key file {path}: {exc.strerror or exc}") from exc
