"""An operator's day without surprises: each case is one clear line on stderr and a non-zero exit.

Every test runs the real ``p2pcity`` command as a subprocess.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tomllib
from pathlib import Path

import pytest

from p2pcity.chain.genesis import Genesis
from p2pcity.crypto.keys import Identity
from p2pcity.store import Store
from p2pcity.testnet import Testnet, free_port
from tests.cli.conftest import CliRun

PSK = "ab" * 32
PEER = "12D3KooWGzh3v1bUDDSrq8mKPVvJPxF16WGbG8aL4DfWV5HyKXYz"


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    out = result.stderr
    assert result.returncode != 0, out
    assert out.startswith("error: ") and out.count("\n") == 1, out
    for word in words:
        assert word in out, out


def init(p2pcity: CliRun, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return p2pcity(
        "init", "--home", str(home), "--district", "bank", "--p2p", f"/ip4/127.0.0.1/tcp/{free_port()}",
        "--api", f"127.0.0.1:{free_port()}", *extra,
    )  # fmt: skip


def test_invalid_multiaddrs_are_refused_at_init_and_genesis_new(p2pcity: CliRun, tmp_path: Path) -> None:
    bad = p2pcity("init", "--home", str(tmp_path / "h"), "--district", "a", "--p2p", "/ip4/127.0.0.1/tcp/abc")
    one_line_error(bad, "p2p.listen", "/tcp/abc")
    assert not (tmp_path / "h" / "config.toml").exists()
    udp = p2pcity("init", "--home", str(tmp_path / "h"), "--district", "a", "--p2p", "/ip4/127.0.0.1/udp/7")
    one_line_error(udp, "TCP")
    one_line_error(init(p2pcity, tmp_path / "h", "--bootstrap", "/ip4/1.2.3.4/tcp/7000"), "/p2p/")
    one_line_error(init(p2pcity, tmp_path / "h", "--announce", "nonsense"), "announce")
    one_line_error(init(p2pcity, tmp_path / "h", "--psk", "short"), "psk")
    assert init(p2pcity, tmp_path / "h").returncode == 0
    card = tmp_path / "h" / "district.json"
    out = tmp_path / "genesis.json"
    result = p2pcity("genesis", "new", "--chain-id", "c", "--district", str(card), "--bootstrap", "nonsense",
                     "--out", str(out))  # fmt: skip
    one_line_error(result, "bootstrap", "nonsense")
    assert not out.exists()


def test_init_takes_the_psk_bootstrap_and_announce_addresses(p2pcity: CliRun, tmp_path: Path) -> None:
    boot = f"/ip4/10.0.0.1/tcp/7000/p2p/{PEER}"
    me = "/dns4/bank.city/tcp/7100"
    result = init(p2pcity, tmp_path / "h", "--psk", PSK, "--bootstrap", boot, "--announce", me)
    assert result.returncode == 0, result.stderr
    p2p = tomllib.loads((tmp_path / "h" / "config.toml").read_text())["p2p"]
    assert p2p["psk"] == PSK and p2p["bootstrap"] == [boot] and p2p["announce"] == [me]
    assert json.loads(result.stdout)["addrs"] == [me]


def test_force_keeps_the_keys_unless_new_keys_and_then_backs_them_up(p2pcity: CliRun, tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert init(p2pcity, home, "--solo").returncode == 0
    first = Identity.load(home / "keys" / "identity.json").signer.public_key
    p2p_key = (home / "keys" / "p2p.key").read_bytes()
    one_line_error(init(p2pcity, home), "already a node home", "--force")
    assert init(p2pcity, home, "--force").returncode == 0
    assert Identity.load(home / "keys" / "identity.json").signer.public_key == first
    assert (home / "keys" / "p2p.key").read_bytes() == p2p_key
    one_line_error(init(p2pcity, home, "--new-keys"), "--force")
    assert init(p2pcity, home, "--force", "--new-keys").returncode == 0
    assert Identity.load(home / "keys" / "identity.json").signer.public_key != first
    (backup,) = home.glob("keys.bak-*")
    assert Identity.load(backup / "identity.json").signer.public_key == first
    assert (backup / "p2p.key").read_bytes() == p2p_key


def test_force_with_a_new_genesis_moves_the_old_chains_data_aside(p2pcity: CliRun, tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert init(p2pcity, home, "--solo").returncode == 0
    Store.open(home / "data", chain_id="old-chain", create=True).close()
    result = init(p2pcity, home, "--force", "--solo")
    assert result.returncode == 0 and "moved the previous chain's data" in result.stderr
    (moved,) = home.glob("data.bak-*")
    assert (moved / "db").is_dir() and not any((home / "data").iterdir())


@pytest.mark.parametrize("which", ["api", "p2p"])
def test_start_on_a_port_in_use_is_one_line(p2pcity: CliRun, tmp_path: Path, which: str) -> None:
    home = tmp_path / "h"
    assert init(p2pcity, home, "--solo").returncode == 0
    config = tomllib.loads((home / "config.toml").read_text())
    port = (
        int(config["api"]["listen"].rsplit(":", 1)[1])
        if which == "api"
        else int(config["p2p"]["listen"].rsplit("/", 1)[1])
    )
    with socket.create_server(("127.0.0.1", port)):
        one_line_error(p2pcity("start", "--home", str(home)), f"{which}.listen", "already in use")


def test_start_on_a_data_directory_of_another_chain_is_one_line(p2pcity: CliRun, tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert init(p2pcity, home, "--solo").returncode == 0
    Store.open(home / "data", chain_id="another-city", create=True).close()
    one_line_error(p2pcity("start", "--home", str(home), timeout=120), "data directory", "another-city")


def test_one_genesis_id_named_the_same_in_genesis_show_and_new(p2pcity: CliRun, tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert init(p2pcity, home).returncode == 0
    out = tmp_path / "genesis.json"
    made = p2pcity("genesis", "new", "--chain-id", "riverside", "--district", str(home / "district.json"),
                   "--out", str(out), check=True)  # fmt: skip
    shown = p2pcity("genesis", "show", str(out), check=True)
    block_id = Genesis.load(out).block().id.hex()  # what every node's /status calls "genesis"
    assert made.stdout.split()[1] == block_id
    assert f"genesis {block_id}" in shown.stdout


def test_a_libp2p_key_given_as_identity_is_one_line(p2pcity: CliRun, tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert init(p2pcity, home).returncode == 0
    (tmp_path / "doc").write_text("x")
    result = p2pcity(
        "record", "put", "a/b", "--file", str(tmp_path / "doc"), "--key", str(home / "keys" / "p2p.key")
    )
    one_line_error(result, "not a p2pcity identity file", "p2p.key")


def test_testnet_status_of_nodes_that_do_not_answer_is_non_zero(p2pcity: CliRun, tmp_path: Path) -> None:
    Testnet.create(tmp_path / "net", 2)  # written, never started
    result = p2pcity("testnet", "status", "--dir", str(tmp_path / "net"))
    one_line_error(result, "2 of 2 nodes do not answer")
    assert "None" not in result.stdout and result.stdout.count(" down ") == 2


@pytest.mark.slow
def test_testnet_up_runs_again_after_down(p2pcity: CliRun, tmp_path: Path) -> None:
    net = str(tmp_path / "net")
    for _ in range(2):
        up = p2pcity("testnet", "up", "--districts", "1", "--dir", net, "--timeout", "120", timeout=180)
        assert up.returncode == 0, up.stderr
        try:
            again = p2pcity("testnet", "up", "--districts", "1", "--dir", net)
            one_line_error(again, "running", "testnet down")
            assert p2pcity("testnet", "status", "--dir", net).returncode == 0
        finally:
            assert p2pcity("testnet", "down", "--dir", net, timeout=60).returncode == 0
