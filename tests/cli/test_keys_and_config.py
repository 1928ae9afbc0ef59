"""The CLI as a subprocess: keys, init, genesis, and one clear line for every user error."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from p2pcity.config import ConfigError, NodeConfig
from p2pcity.crypto.keys import PublicIdentity
from tests.cli.conftest import CliRun


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_keys_new_and_show(p2pcity: CliRun, tmp_path: Path) -> None:
    made = p2pcity("keys", "new", "--out", "alice.key", check=True)
    public = made.stdout.strip()
    PublicIdentity.parse(public)
    assert stat.S_IMODE(os.stat(tmp_path / "alice.key").st_mode) == 0o600
    shown = p2pcity("keys", "show", "alice.key", "--json", check=True)
    assert json.loads(shown.stdout)["public"] == public


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("keys", "show", "missing.key"), 1, "does not exist"),
        (("keys", "show", "garbage.key"), 1, "not a p2pcity identity"),
        (("keys", "new"), 2, "Missing option"),
        (("keys", "new", "--out", "garbage.key"), 1, "already exists"),
        (("--no-such-flag",), 2, "No such option"),
        (("record", "get", "land/x", "--node", "http://127.0.0.1:9"), 1, "cannot reach node"),
        (("start", "--home", "nowhere"), 1, "config.toml not found"),
        (("genesis", "show", "garbage.key"), 1, "cannot read genesis"),
        (("testnet", "status", "--dir", "nowhere"), 1, "no testnet"),
    ],
)
def test_user_errors_are_one_line_and_nonzero(
    p2pcity: CliRun, tmp_path: Path, args: tuple[str, ...], code: int, fragment: str
) -> None:
    (tmp_path / "garbage.key").write_text("{not json")
    result = p2pcity(*args)
    assert result.returncode == code
    assert fragment in _one_error_line(result.stderr)


def test_init_solo_writes_a_home_and_genesis(p2pcity: CliRun, tmp_path: Path) -> None:
    result = p2pcity("init", "--home", "n1", "--district", "registry", "--solo", check=True)
    card = json.loads(result.stdout)
    assert card["name"] == "registry" and card["peer_id"].startswith("12D3KooW")
    config = NodeConfig.load(tmp_path / "n1")
    assert config.district == "registry"
    shown = p2pcity("genesis", "show", str(tmp_path / "n1" / "genesis.json"), check=True)
    assert "registry" in shown.stdout
    again = p2pcity("init", "--home", "n1", "--district", "registry")
    assert "already a node home" in _one_error_line(again.stderr)


def test_genesis_new_from_cards(p2pcity: CliRun, tmp_path: Path) -> None:
    for name in ("registry", "bank"):
        out = p2pcity("init", "--home", name, "--district", name, check=True).stdout
        (tmp_path / f"{name}.json").write_text(out)
    made = p2pcity(
        "genesis",
        "new",
        "--chain-id",
        "river-city",
        "--district",
        "registry.json",
        "--district",
        "bank.json",
        "--out",
        "genesis.json",
        check=True,
    )
    assert "2 districts" in made.stdout
    dup = p2pcity(
        "genesis",
        "new",
        "--chain-id",
        "river-city",
        "--district",
        "bank.json",
        "--district",
        "bank.json",
        "--out",
        "g2.json",
    )
    assert "share" in _one_error_line(dup.stderr)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("district = 'x'\n[api]\nlisten = 'nohost'\n", "HOST:PORT"),
        ("district = 'x'\n[p2p]\npsk = 'abc'\n", "64 hex"),
        ("district = 'x'\nbogus = 1\n", "unknown setting"),
        ("district = 'x'\n[consensus]\nmax_block_txs = 'many'\n", "integer"),
        ("district = = 'x'\n", "not valid TOML"),
        ("[api]\n", "district"),
    ],
)
def test_corrupt_config_is_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        NodeConfig.load(tmp_path)
