"""Admission from the genesis and from ``GET /validators``, the status line, and the config file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bootstrap.admission import Admission, from_genesis, parse_members, validators_url
from bootstrap.config import BootstrapConfig
from bootstrap.node import published_addrs, status_line
from p2pcity.config import ConfigError

from .conftest import write_genesis

A = "12D3KooWDnzdciSSZYjkDAdnK32qrkkqhwoVV1mY1tdKUGcAKtP5"
B = "12D3KooWF6kwn9DFKh8wRezinCrK9zs1rwhDx4eofWaaCEPZqhCi"
BOOT = "12D3KooWSiYCR7N6Ykt2XUhXZSSVAy2LFsefVzrCaVJ9cew81gvn"
OTHER_BOOT = "12D3KooWRHJhab8E7nUDtxebq342HirXHaG7H9hPTAmk8TpCKmcH"
EXTRA = "12D3KooWJPLraAjqB2Y9mJYYH5mc8xjmuFQKuNtM4C63sHYaqXRv"


def test_genesis_admits_every_district_and_the_other_bootstrap_nodes(tmp_path: Path) -> None:
    genesis = write_genesis(
        tmp_path / "g.json",
        [A, B, "not-a-peer-id"],
        (f"/ip4/10.0.0.1/tcp/7000/p2p/{BOOT}", f"/dns4/boot2.city/tcp/7000/p2p/{OTHER_BOOT}"),
    )
    admission = from_genesis(genesis, (EXTRA,), BOOT)
    assert admission.districts == {A: "district-0", B: "district-1"}  # the observer without a peer id is out
    assert set(admission.fixed) == {OTHER_BOOT, EXTRA}  # not ourselves
    assert admission.peers == {A, B, OTHER_BOOT, EXTRA}
    assert admission.name(A) == "district-0"


def test_genesis_observers_are_admitted_too(tmp_path: Path) -> None:
    genesis = write_genesis(tmp_path / "g.json", [A, B])
    assert [d.role for d in genesis.districts] == ["validator", "observer"]
    assert from_genesis(genesis, (), BOOT).peers == {A, B}


def test_members_of_a_validators_answer() -> None:
    answer = {"version": 3, "districts": [{"name": "bank", "peer_id": A}, {"name": "gone", "peer_id": ""}]}
    assert parse_members(answer) == {A: "bank"}
    bad_answers: list[object] = [[], {"districts": {}}, {"districts": [1]}, {"districts": [{"peer_id": "x"}]}]
    for bad in [*bad_answers, {"districts": []}]:
        with pytest.raises(ValueError):
            parse_members(bad)


def test_validators_url() -> None:
    assert validators_url("http://node:8700") == "http://node:8700/validators"
    assert validators_url("http://node:8700/") == "http://node:8700/validators"
    assert validators_url("https://node/api/validators") == "https://node/api/validators"


def test_status_line() -> None:
    admission = Admission({A: "bank", B: "court"}, {EXTRA: "extra"})
    line = status_line(admission, {A, EXTRA}, {"p2pcity/c": 2, "p2pcity/wrong": 1}, "p2pcity/c")
    assert line == (
        "status: 2/3 admitted peers connected (bank, extra); rendezvous: 2 registered in p2pcity/c, "
        "1 in other namespaces (p2pcity/wrong: 1)"
    )
    assert status_line(admission, set(), {}, "p2pcity/c").startswith("status: 0/3 admitted peers connected;")


def test_published_addrs() -> None:
    config = BootstrapConfig(home=Path("/h"))
    assert published_addrs(config, A) == [f"/ip4/<public-ip>/tcp/7000/p2p/{A}"]
    config = dataclasses.replace(config, announce=("/dns4/boot.city/tcp/7000", "/ip4/203.0.113.7/tcp/7000"))
    assert published_addrs(config, A) == [
        f"/dns4/boot.city/tcp/7000/p2p/{A}",
        f"/ip4/203.0.113.7/tcp/7000/p2p/{A}",
    ]


def test_config_round_trips_and_accepts_a_minimal_file(tmp_path: Path) -> None:
    config = BootstrapConfig(
        home=tmp_path, announce=("/dns4/b/tcp/7000",), psk="ab" * 32, extra_peers=(A,),
        follow="http://n:8700", follow_interval=5, status_interval=0.5,
    )
    config.save()
    assert BootstrapConfig.load(tmp_path) == dataclasses.replace(config, home=tmp_path.resolve())
    # What deploy/compose_init.py writes: only [p2p] listen and psk.
    (tmp_path / "config.toml").write_text(f'[p2p]\nlisten = "/ip4/0.0.0.0/tcp/7000"\npsk = "{"cd" * 32}"\n')
    loaded = BootstrapConfig.load(tmp_path)
    assert (loaded.psk, loaded.follow, loaded.status_interval) == ("cd" * 32, "auto", 60.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[p2p]\nlisten = 7000\n", "p2p.listen must be a string"),
        ("[p2p]\npsk = \"abc\"\n", "p2p.psk must be 64 hex"),
        ("[p2p]\nport = 1\n", "unknown setting(s) in [p2p]: port"),
        ("[node]\n", "unknown setting(s): node"),
        ("[admission]\nfollow_interval = 0\n", "at least 1 second"),
        ("[log]\nlevel = \"loud\"\n", "log.level must be one of"),
        ("p2p = [", "not valid TOML"),
    ],
)
def test_config_errors_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"config\.toml") as caught:
        BootstrapConfig.load(tmp_path)
    assert message in str(caught.value)

