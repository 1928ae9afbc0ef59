"""Identity key files and up-front config validation (no network)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from libp2p.crypto.secp256k1 import create_new_key_pair as secp256k1_key_pair

from p2pcity.net import (
    ConfigError,
    NetConfig,
    Network,
    create_key_file,
    peer_id_from_key_file,
    peer_id_from_public_key,
)
from p2pcity.net.identity import load_or_create_key

VALID_ID = "12D3KooWHNstTA668gV2SDr4h1psPbeUoyHrn5LxomNZNjdDfx3s"


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "home" / "p2p.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_key(path)
    assert first.public_key.to_bytes() == second.public_key.to_bytes()
    peer = peer_id_from_key_file(path)
    assert peer.startswith("12D3KooW")
    assert peer == peer_id_from_public_key(first.public_key.to_bytes())


def test_network_uses_the_key_file_identity(tmp_path: Path) -> None:
    path = tmp_path / "p2p.key"
    peer = create_key_file(path)
    assert Network(NetConfig(chain_id="c", key_file=path)).peer_id == peer


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "p2p.key"
    create_key_file(path)
    with pytest.raises(ConfigError, match="already exists"):
        create_key_file(path)


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p2p.key"
    path.write_bytes(b"\x08\x01\x12\x05garbage")
    with pytest.raises(ConfigError, match="corrupt"):
        load_or_create_key(path)
    with pytest.raises(ConfigError, match="corrupt"):
        Network(NetConfig(chain_id="c", key_file=path))


def test_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p2p.key"
    path.write_bytes(secp256k1_key_pair().private_key.serialize())
    with pytest.raises(ConfigError, match="Ed25519"):
        load_or_create_key(path)


def test_bad_public_key_length() -> None:
    with pytest.raises(ConfigError):
        peer_id_from_public_key(b"\x01" * 31)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"psk": "abc"}, "64 hex"),
        ({"psk": "zz" * 32}, "64 hex"),
        ({"chain_id": "bad chain"}, "chain_id"),
        ({"allowed_peers": frozenset({"not-a-peer"})}, "peer id"),
        ({"allowed_peers": frozenset({"QmShortButBase58"})}, "peer id"),
        ({"bootstrap": ["/ip4/1.2.3.4/tcp/1"]}, "/p2p/"),
        ({"listen_addrs": ["/ip9/nowhere"]}, "multiaddr"),
        ({"static_peers": {VALID_ID: "/ip4/1.2.3.4/tcp/1"}}, "list"),
        ({"max_gossip_size": 2 * 1024 * 1024}, "max_gossip_size"),
        ({"dial_timeout": 0}, "dial_timeout"),
    ],
)
def test_config_is_validated_up_front(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NetConfig(chain_id=str(overrides.pop("chain_id", "c")), key_file=tmp_path / "k", **overrides)  # type: ignore[arg-type]


def test_valid_config_and_names(tmp_path: Path) -> None:
    config = NetConfig(
        chain_id="city-1",
        key_file=tmp_path / "k",
        psk="0f" * 32,
        allowed_peers=frozenset({VALID_ID}),
        bootstrap=[f"/ip4/10.0.0.1/tcp/7100/p2p/{VALID_ID}"],
        static_peers={VALID_ID: ["/dns4/node.example/tcp/7100"]},
    )
    assert config.protocol_id("sync") == "/p2pcity/city-1/sync/1.0.0"
    assert config.topic_id("txs") == "/p2pcity/city-1/txs"
    with pytest.raises(ConfigError):
        config.protocol_id("Bad/Name")
