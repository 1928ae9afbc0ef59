"""Key files other libp2p implementations read: the identity protobuf and swarm.key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from p2pcity.net import ConfigError, create_key_file, peer_id_from_key_file
from p2pcity.net.identity import decode_private_key, encode_private_key, key_file_is_spec_form, load_key
from p2pcity.net.swarm_key import decode_swarm_key, encode_swarm_key

# libp2p/specs peer-ids/peer-ids.md, "Test vectors": the Ed25519 private key and its peer id.
SPEC_PRIVATE = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SPEC_PUBLIC = bytes.fromhex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
SPEC_PEER_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


def test_spec_vector_round_trips() -> None:
    key_pair = decode_private_key(SPEC_PRIVATE)
    assert key_pair.public_key.serialize() == SPEC_PUBLIC
    assert ID.from_pubkey(key_pair.public_key).to_base58() == SPEC_PEER_ID
    assert encode_private_key(key_pair) == SPEC_PRIVATE


def test_new_key_files_are_the_spec_form(tmp_path: Path) -> None:
    path = tmp_path / "p2p.key"
    peer = create_key_file(path)
    raw = path.read_bytes()
    assert raw[:4] == bytes([0x08, 0x01, 0x12, 0x40]) and len(raw) == 68
    assert key_file_is_spec_form(path)
    assert raw[36:] == load_key(path).public_key.to_bytes()
    assert peer_id_from_key_file(path) == peer


def test_old_32_byte_seed_files_still_load(tmp_path: Path) -> None:
    key_pair = create_new_key_pair()
    path = tmp_path / "old.key"
    path.write_bytes(key_pair.private_key.serialize())  # py-libp2p 0.8.1's save_identity form
    path.chmod(0o600)
    assert len(path.read_bytes()) == 36 and not key_file_is_spec_form(path)
    assert peer_id_from_key_file(path) == ID.from_pubkey(key_pair.public_key).to_base58()


def test_spec_form_with_a_foreign_public_key_is_refused() -> None:
    forged = SPEC_PRIVATE[:36] + bytes(32)
    with pytest.raises(ConfigError, match="does not match its seed"):
        decode_private_key(forged)


@pytest.mark.parametrize("data", [b"", b"\x08\x01\x12\x10" + bytes(16), b"\xff" * 40])
def test_malformed_identity_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(ConfigError, match="corrupt"):
        decode_private_key(data)


KEY = "3fd1a0e1c2b3a4958677685948392a1b0c0d0e0f101112131415161718191a1b"


def test_swarm_key_file_round_trips() -> None:
    data = encode_swarm_key(KEY.upper())
    assert data == f"/key/swarm/psk/1.0.0/\n/base16/\n{KEY}\n".encode()
    assert decode_swarm_key(data) == KEY


@pytest.mark.parametrize(
    "data",
    [
        f"/key/swarm/psk/1.0.0/\r\n/base16/\r\n{KEY.upper()}\r\n".encode(),  # as Windows tools write it
        f"/key/swarm/psk/1.0.0/\n/base16/\n{KEY}".encode(),  # ipfs-swarm-key-gen: no final newline
        b"/key/swarm/psk/1.0.0/\n/base64/\n" + base64.b64encode(bytes.fromhex(KEY)) + b"\n",
        b"/key/swarm/psk/1.0.0/\n/bin/\n" + bytes.fromhex(KEY),
    ],
)
def test_swarm_key_encodings_go_libp2p_reads(data: bytes) -> None:
    assert decode_swarm_key(data) == KEY


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (KEY.encode(), "first line"),
        (b"/key/swarm/psk/2.0.0/\n/base16/\n" + KEY.encode(), "first line"),
        (b"/key/swarm/psk/1.0.0/\n/base58/\n" + KEY.encode(), "unknown encoding"),
        (b"/key/swarm/psk/1.0.0/\n/base16/\n" + KEY[:-2].encode(), "64 hex"),
        (b"/key/swarm/psk/1.0.0/\n/base16/\n" + KEY.encode() + b"00", "64 hex"),
        (b"/key/swarm/psk/1.0.0/\n/base64/\n!!!!\n", "base64"),
        (b"/key/swarm/psk/1.0.0/\n/base64/\nAAAA\n", "32 bytes"),
        (b"/key/swarm/psk/1.0.0/\n/bin/\n" + bytes(31), "32 bytes"),
    ],
)
def test_bad_swarm_key_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode_swarm_key(data)


def test_encode_refuses_a_bad_key() -> None:
    with pytest.raises(ConfigError, match="64 hex"):
        encode_swarm_key("zz" * 32)
