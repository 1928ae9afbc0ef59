"""Validator-set changes on real processes, with the CLI an operator uses (``p2pcity district``).

Both soak-marked (minutes on a loaded machine), run with:

    .venv/bin/python -m pytest -m soak tests/node/test_epochs_testnet.py --basetemp=DIR

- a 4-validator testnet under a bounded client load adds a fifth validator
  that was running (unregistered) from the start, with ``p2pcity district``
  commands only; the chain keeps committing, every node has the same block at
  every height, and the newcomer's votes are in the new epoch's QCs;
- then a validator is removed, the chain goes on without it, and every node
  is restarted at once; the chain resumes in the last epoch.

Known failure (load ~30, 2 cores): the change commits, the old validators go
on, and the newcomer syncs from genesis through the hand-over into epoch 1,
but then stalls: its core fetches the missing parents of far-ahead proposals
one stream each ("too many inbound streams" at its peers), and its sync
surveys (``height``) time out among them, so the syncer never takes over.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from p2pcity.client import Client, ClientError
from p2pcity.config import NodeConfig
from p2pcity.crypto.keys import Identity
from p2pcity.home import DistrictCard, new_genesis
from p2pcity.testnet import Testnet
from tests.processes import FAST

CHAIN = "epochs-city"
STALL = "the newcomer stalls after the epoch change under load (module docstring)"


def cli(*args: str, timeout: float = 180) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "p2pcity", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def card_of(home: Path) -> DistrictCard:
    raw = json.loads((home / "district.json").read_text())
    return DistrictCard(**{**raw, "addrs": tuple(raw.get("addrs", ()))})


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Testnet]:
    """Five homes; the genesis registers the first four (the fifth runs, waiting to be added)."""
    testnet = Testnet.create(tmp_path / "net", 5, chain_id=CHAIN, config_overrides=FAST)
    genesis = new_genesis(CHAIN, [card_of(n.home) for n in testnet.nodes[:4]])
    for node in testnet.nodes:
        genesis.save(node.home / "genesis.json")
    genesis.save(testnet.dir / "genesis.json")
    testnet.start(timeout=180)
    try:
        yield testnet
    finally:
        testnet.down()


class Load:
    """A bounded client load: one record every ~0.3 s from one account, at most ``limit``."""

    def __init__(self, url: str, limit: int = 60) -> None:
        self.url, self.limit, self.sent = url, limit, 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.who = Identity.generate()

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with Client(self.url) as node:
            while not self._stop.is_set() and self.sent < self.limit:
                try:
                    node.put_record(self.who, f"load/doc-{self.sent}", b"x%d" % self.sent, wait=False)
                    self.sent += 1
                except ClientError as exc:
                    self.errors.append(str(exc))
                self._stop.wait(0.3)


def validators(url: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(url + "/validators", timeout=10).json()
    return result


def block(url: str, height: int) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{url}/blocks/{height}", timeout=10).json()
    return result


def change(net: Testnet, tmp_path: Path, propose: list[str], approvers: list[int], submitter: int) -> None:
    url = net.nodes[submitter].api
    path = tmp_path / f"change-{time.monotonic_ns()}.json"
    cli("district", "propose", *propose, "--node", url, "--out", str(path))
    for i in approvers:
        cli("district", "approve", str(path), "--key", str(net.nodes[i].home / "keys" / "identity.json"))
    key = str(net.nodes[submitter].home / "keys" / "identity.json")
    cli("district", "submit", str(path), "--key", key, "--node", url, "--timeout", "120")


def same_chain(net: Testnet, nodes: list[int], up_to: int) -> None:
    """Every node in ``nodes`` has the same block hash at every height up to ``up_to``."""
    for height in range(1, up_to + 1):
        hashes = {block(net.nodes[i].api, height)["hash"] for i in nodes}
        assert len(hashes) == 1, f"nodes disagree at height {height}"


@pytest.mark.soak
@pytest.mark.xfail(reason=STALL, strict=False)
def test_a_fifth_validator_joins_a_live_testnet_and_votes(net: Testnet, tmp_path: Path) -> None:
    first = net.nodes[0].api
    newcomer = net.nodes[4]
    net.wait_for_height(3, timeout=120, nodes=[0, 1, 2, 3])
    with Load(first) as load:
        change(net, tmp_path, ["--card", str(newcomer.home / "district.json")], [0, 1, 2], 0)
        now = validators(first)
        assert now["version"] == 1 and newcomer.account in now["validators"]
        start = int(httpx.get(first + "/status", timeout=10).json()["height"])
        net.wait_for_height(start + 1, timeout=180, nodes=[0])
        # Where epoch 1 begins (the status height read here may be a few blocks below it).
        while block(first, start)["epoch"] == 0:
            start += 1
            net.wait_for_height(start, timeout=180, nodes=[0])
        # The chain keeps committing in the new epoch, the newcomer with it, and it votes.
        net.wait_for_height(start + 6, timeout=180)
        signers: set[str] = set()
        for height in range(start + 2, start + 7):
            b = block(first, height)
            assert b["epoch"] == 1
            signers.update(b["justify"]["signers"])
        assert newcomer.account in signers, "the new validator's votes are in no QC of the new epoch"
    assert load.sent > 0 and not load.errors
    listing = cli("district", "list", "--node", newcomer.api)
    assert "epoch 1: 5 validators" in listing
    same_chain(net, [0, 1, 2, 3, 4], start + 6)


@pytest.mark.soak
@pytest.mark.xfail(reason=STALL, strict=False)
def test_remove_a_validator_then_restart_every_node(net: Testnet, tmp_path: Path) -> None:
    first = net.nodes[0].api
    net.wait_for_height(3, timeout=120, nodes=[0, 1, 2, 3])
    change(net, tmp_path, ["--card", str(net.nodes[4].home / "district.json")], [0, 1, 2], 0)
    with Load(first):
        change(net, tmp_path, ["--remove", net.nodes[1].name], [0, 2, 3, 4], 0)
        now = validators(first)
        assert now["version"] == 2 and net.nodes[1].account not in now["validators"]
        start = int(httpx.get(first + "/status", timeout=10).json()["height"])
        net.wait_for_height(start + 5, timeout=180, nodes=[0, 2, 3, 4])
        for height in range(start + 2, start + 6):
            assert net.nodes[1].account not in block(first, height)["justify"]["signers"]
    for i in range(5):
        net.stop_node(i)
    net.start(timeout=180)
    net.wait_for_height(start + 10, timeout=240, nodes=[0, 2, 3, 4])
    same_chain(net, [0, 2, 3, 4], start + 10)


@pytest.mark.soak
def test_rotate_a_districts_keys_on_a_live_testnet(tmp_path: Path) -> None:
    """README "Rotating a district's keys", step by step: the new home (new account, PRE key
    and libp2p identity, same name and ports) is registered by ``district propose --rotate``;
    the old node stops, the new one starts, syncs and votes; the old account signs nothing."""
    # Idle blocks every 2 s, not 0.3: the new home syncs from genesis, and under load (2 cores,
    # load 15-25) sync ran slower than a 0.3 s chain grew (issue 9's sync), never catching up.
    slow = {"consensus": {"base_timeout_ms": 5000, "empty_block_interval_ms": 2000}}
    net = Testnet.create(tmp_path / "net", 4, chain_id=CHAIN, config_overrides=slow)
    net.start(timeout=180)
    try:
        old = net.nodes[3]
        first = net.nodes[0].api
        net.wait_for_height(3, timeout=120)
        config = NodeConfig.load(old.home)
        home = tmp_path / "rotated"
        boots = [f"{n.p2p}/p2p/{n.peer_id}" for n in net.nodes[:3]]
        cli(
            "init", "--home", str(home), "--district", old.name, "--genesis", str(net.dir / "genesis.json"),
            "--p2p", old.p2p, "--api", old.api.removeprefix("http://"), "--psk", config.p2p.psk,
            *(arg for b in boots for arg in ("--bootstrap", b)),
        )
        card = card_of(home)
        assert card.account != old.account and card.peer_id != old.peer_id
        change(net, tmp_path, ["--rotate", old.name, "--card", str(home / "district.json")], [0, 1, 2], 0)
        now = validators(first)
        assert card.account in now["validators"] and old.account not in now["validators"]
        net.stop_node(3)
        proc = subprocess.Popen(
            [sys.executable, "-m", "p2pcity", "start", "--home", str(home)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            start = int(httpx.get(first + "/status", timeout=10).json()["height"])
            net.wait_for_height(start + 8, timeout=300, nodes=[0, 1, 2])
            deadline = time.monotonic() + 600
            signers: set[str] = set()
            while card.account not in signers:
                assert time.monotonic() < deadline, "the rotated district's new key votes in no QC"
                top = int(httpx.get(first + "/status", timeout=10).json()["height"])
                for height in range(start + 1, top + 1):
                    signers.update(block(first, height)["justify"]["signers"])
                time.sleep(2)
            assert old.account not in signers
            ours = httpx.get(old.api + "/status", timeout=10).json()
            assert ours["district"] == old.name and int(ours["height"]) >= start
            assert block(old.api, start)["hash"] == block(first, start)["hash"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        net.down()
