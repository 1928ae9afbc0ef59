"""``keys swarm-key``, ``keys libp2p`` and ``init --swarm-key``: key files go and js libp2p read."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from p2pcity.config import NodeConfig
from p2pcity.home import init_home

from .conftest import CliRun

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
SWARM_KEY = f"/key/swarm/psk/1.0.0/\n/base16/\n{KEY}\n"


def test_swarm_key_import_and_export(p2pcity: CliRun, tmp_path: Path) -> None:
    (tmp_path / "swarm.key").write_text(f"/key/swarm/psk/1.0.0/\n/base16/\n{KEY.upper()}\n")
    p2pcity("init", "--home", "a", "--district", "a", "--swarm-key", "swarm.key", check=True)
    assert NodeConfig.load(tmp_path / "a").p2p.psk == KEY
    assert p2pcity("keys", "swarm-key", "--home", "a", check=True).stdout == SWARM_KEY
    p2pcity("keys", "swarm-key", "--home", "a", "--out", "exported.key", check=True)
    assert (tmp_path / "exported.key").read_text() == SWARM_KEY
    assert stat.S_IMODE(os.stat(tmp_path / "exported.key").st_mode) == 0o600

    p2pcity("init", "--home", "b", "--district", "b", check=True)
    assert NodeConfig.load(tmp_path / "b").p2p.psk == ""
    p2pcity("keys", "swarm-key", "--home", "b", "--import", "exported.key", check=True)
    assert NodeConfig.load(tmp_path / "b").p2p.psk == KEY


def test_swarm_key_errors_are_one_line(p2pcity: CliRun, tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text(KEY)  # the bare hex, not the spec file
    result = p2pcity("init", "--home", "a", "--district", "a", "--swarm-key", "bad.key")
    assert result.returncode == 1 and "not a swarm key file" in result.stderr
    assert not (tmp_path / "a").exists(), "a refused key must not leave a half-made home"
    init_home(tmp_path / "b", "b")
    result = p2pcity("keys", "swarm-key", "--home", "b")
    assert result.returncode == 1 and "no p2p.psk" in result.stderr
    assert "Traceback" not in result.stderr


def test_libp2p_key_shows_and_exports_the_spec_form(p2pcity: CliRun, tmp_path: Path) -> None:
    init_home(tmp_path / "a", "a")
    shown = json.loads(p2pcity("keys", "libp2p", "--home", "a", "--export", "id.key", check=True).stdout)
    assert shown["form"].startswith("spec")
    exported = (tmp_path / "id.key").read_bytes()
    assert exported == (tmp_path / "a" / "keys" / "p2p.key").read_bytes()
    assert exported[:4] == bytes([8, 1, 0x12, 0x40])


def test_old_seed_key_is_exported_in_the_spec_form(p2pcity: CliRun, tmp_path: Path) -> None:
    init_home(tmp_path / "a", "a")
    key_pair = create_new_key_pair()
    old = tmp_path / "a" / "keys" / "p2p.key"
    old.write_bytes(key_pair.private_key.serialize())  # a key made by p2pcity before the spec form
    shown = json.loads(p2pcity("keys", "libp2p", "--home", "a", "--export", "id.key", check=True).stdout)
    assert shown["form"] == "py-libp2p 32-byte seed"
    assert shown["peer_id"] == ID.from_pubkey(key_pair.public_key).to_base58()
    exported = (tmp_path / "id.key").read_bytes()
    assert (
        exported
        == bytes([8, 1, 0x12, 0x40]) + key_pair.private_key.to_bytes() + key_pair.public_key.to_bytes()
    )


def test_corrupt_libp2p_key_is_one_line(p2pcity: CliRun, tmp_path: Path) -> None:
    init_home(tmp_path / "a", "a")
    (tmp_path / "a" / "keys" / "p2p.key").write_bytes(b"\x08\x01\x12\x40" + bytes(10))
    result = p2pcity("keys", "libp2p", "--home", "a")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "corrupt" in result.stderr
    assert "Traceback" not in result.stderr
