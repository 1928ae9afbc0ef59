"""Validator-set changes on real processes, in one run, with the CLI an operator uses (issue 11).

Soak-marked (about 3-4 minutes on 2 loaded cores), run with:

    .venv/bin/python -m pytest -m soak tests/node/test_epochs_testnet.py -s --basetemp=DIR

``-s`` prints the figures: each change's duration, the longest gap between
commits on every node during it, the epochs crossed, the fresh node's sync.

A 4-validator testnet under a steady client load (one record a second):
the owner grants a dataset first; then, with ``p2pcity district`` commands only,
- a fifth validator (running, unregistered, from the start) is added: it syncs
  across the hand-over and votes in the new epoch's QCs;
- a genesis validator is removed: it signs nothing after, and it refuses to
  serve the grant (``retired``), said by the node the grantee asks and by the
  removed node itself;
- one district's keys are rotated (README "Rotating a district's keys"): the
  old node stops, the new home syncs and votes, the old account signs nothing.
Through each change no node goes longer than 3x the base view timeout without
a commit (read from every node's log). Then an observer of the genesis that was
never started syncs from genesis through every epoch; every node has the same
block at every height; ``data audit`` warns, the owner regrants, the grantee
opens the dataset through the new set's fragments.

The run hung last session with no result: ``GET /blocks/{h}`` said epoch 0 for
every block (the API's view left the field out; fixed in ``api/views.py``), so
the wait for epoch 1 to begin never ended.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from p2pcity.client import Client, ClientError
from p2pcity.codec import encode
from p2pcity.config import NodeConfig
from p2pcity.crypto.keys import Identity
from p2pcity.home import DistrictCard, new_genesis
from p2pcity.sharing.client import collect
from p2pcity.sharing.messages import ReencryptRequest
from p2pcity.sharing.submit import send
from p2pcity.testnet import Testnet
from p2pcity.types.tx import AccessRequest

from .commit_log import commits, longest_gap

CHAIN = "epochs-city"
# An idle block a second, not every 0.3 s (tests.processes.FAST): two nodes sync from genesis
# here, and at load 12-15 on 2 cores a 0.3 s chain (1,450 blocks by the rotation) grew faster
# than the rotated home could sync it. The view timeout is above the idle interval, so that an
# idle chain's own pace is not taken for a stall.
SETTINGS = {"consensus": {"base_timeout_ms": 2000, "empty_block_interval_ms": 1000}}
# A stall: longer than 3x the base view timeout without a commit.
STALL_S = 3 * SETTINGS["consensus"]["base_timeout_ms"] / 1000


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
    """Six homes: the genesis registers the first four as validators and the sixth as an observer;
    the fifth runs unregistered (waiting to be added), the sixth is not started (the fresh node)."""
    testnet = Testnet.create(tmp_path / "net", 5, observers=1, chain_id=CHAIN, config_overrides=SETTINGS)
    nodes = testnet.nodes
    genesis = new_genesis(CHAIN, [card_of(n.home) for n in [*nodes[:4], nodes[5]]])
    for node in nodes:
        genesis.save(node.home / "genesis.json")
    genesis.save(testnet.dir / "genesis.json")
    for i in range(5):
        testnet.restart(i, wait=False)
    try:
        testnet.wait_ready(180, nodes=list(range(5)))
        yield testnet
    finally:
        testnet.down()


class Load:
    """A steady client load: one record every ~``pause`` s from one account, at most ``limit``."""

    def __init__(self, url: str, limit: int = 2000, pause: float = 1.0) -> None:
        self.url, self.limit, self.sent, self.pause = url, limit, 0, pause
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
                self._stop.wait(self.pause)


def validators(url: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(url + "/validators", timeout=10).json()
    return result


def height_of(url: str) -> int:
    return int(httpx.get(url + "/status", timeout=10).json()["height"])


def block(url: str, height: int) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{url}/blocks/{height}", timeout=10).json()
    return result


def hashes(url: str, up_to: int) -> list[str]:
    """The node's block hashes at heights 1..up_to, a page of 100 at a time."""
    found: list[str] = []
    while len(found) < up_to:
        limit = min(100, up_to - len(found))
        page = httpx.get(url + "/blocks", params={"after": len(found), "limit": limit}, timeout=30).json()
        assert page["items"], f"{url} has no block above {len(found)}"
        found += [b["hash"] for b in page["items"]]
    return found[:up_to]


def change(net: Testnet, tmp_path: Path, propose: list[str], approvers: list[int], submitter: int) -> None:
    url = net.nodes[submitter].api
    path = tmp_path / f"change-{time.monotonic_ns()}.json"
    cli("district", "propose", *propose, "--node", url, "--out", str(path))
    for i in approvers:
        cli("district", "approve", str(path), "--key", str(net.nodes[i].home / "keys" / "identity.json"))
    key = str(net.nodes[submitter].home / "keys" / "identity.json")
    cli("district", "submit", str(path), "--key", key, "--node", url, "--timeout", "120")


def epoch_start(net: Testnet, url: str, epoch: int) -> int:
    """The first committed height of ``epoch`` (or a later one) on the node at ``url``."""
    height = height_of(url)
    while block(url, height)["epoch"] < epoch:  # submit returns once the set changed: soon after
        height += 1
        net.wait_for_height(height, timeout=180, nodes=[net.nodes.index(_node(net, url))])
    while height > 1 and block(url, height - 1)["epoch"] >= epoch:
        height -= 1
    return height


def _node(net: Testnet, url: str) -> Any:
    return next(n for n in net.nodes if n.api == url)


def signers_since(url: str, since: int, account: str, timeout: float = 300) -> tuple[set[str], int]:
    """Every QC signer of the blocks above ``since``, once ``account`` is among them (and the top)."""
    deadline = time.monotonic() + timeout
    signers: set[str] = set()
    seen = since
    while True:
        top = height_of(url)
        for height in range(seen + 1, top + 1):
            signers.update(block(url, height)["justify"]["signers"])
        seen = top
        if account in signers:
            return signers, top
        assert time.monotonic() < deadline, f"{account[:12]} votes in no QC above height {since}"
        time.sleep(1)


class Phases:
    """Each change's window on the wall clock, the nodes that must commit through it, and the
    longest gap between commits each of them had there (from its log)."""

    def __init__(self, net: Testnet) -> None:
        self.net = net
        self.rows: list[dict[str, Any]] = []

    def record(self, name: str, start: float, logs: dict[str, Path]) -> None:
        end = time.time()
        gaps = {who: round(longest_gap(log, start, end).seconds, 2) for who, log in logs.items()}
        self.rows.append({"change": name, "seconds": round(end - start, 1), "longest_gap_s": gaps})
        print(f"[epochs] {name}: {end - start:.1f} s, longest gap between commits per node {gaps}")

    def logs(self, indexes: list[int]) -> dict[str, Path]:
        return {self.net.nodes[i].name: self.net.nodes[i].home / "logs" / "stdout.log" for i in indexes}


@pytest.mark.soak
def test_add_remove_and_rotate_on_a_live_testnet_under_load(net: Testnet, tmp_path: Path) -> None:
    registry, bank, court, tax, hospital, _ = net.nodes
    first = registry.api
    phases = Phases(net)
    net.wait_for_height(3, timeout=120, nodes=[0, 1, 2, 3])

    # A dataset granted before any change (its fragments: the four genesis validators').
    owner, grantee = tmp_path / "owner.json", tmp_path / "grantee.json"
    cli("keys", "new", "--out", str(owner))
    grantee_public = cli("keys", "new", "--out", str(grantee)).split()[0]
    plain = tmp_path / "deed.txt"
    plain.write_bytes(b"parcel 7, owned by the city " * 100)
    dataset = cli("data", "put", str(plain), "--key", str(owner), "--node", first).split()[0]
    grant_id = cli(
        "data", "grant", dataset, "--to", grantee_public, "--key", str(owner), "--node", first,
        "--confirm-node", court.api,
    ).split()[0]

    with Load(first) as load:
        # 1. Add the fifth validator (approved by 3 of the 4).
        start = time.time()
        change(net, tmp_path, ["--card", str(hospital.home / "district.json")], [0, 1, 2], 0)
        epoch1 = epoch_start(net, first, 1)
        signers, _ = signers_since(first, epoch1, hospital.account)
        phases.record("add hospital", start, phases.logs([0, 1, 2, 3]))
        assert hospital.account in validators(first)["validators"]

        # 2. Remove a genesis validator (4 of the 5 approve).
        start = time.time()
        change(net, tmp_path, ["--remove", bank.name], [0, 2, 3, 4], 0)
        epoch2 = epoch_start(net, first, 2)
        net.wait_for_height(epoch2 + 5, timeout=180, nodes=[0, 2, 3, 4])
        for height in range(epoch2 + 1, epoch2 + 6):
            assert bank.account not in block(first, height)["justify"]["signers"]
        phases.record("remove bank", start, phases.logs([0, 2, 3, 4]))
        refuses_to_serve(bank.api, first, grantee, grant_id, bank.account)

        # 3. Rotate tax's keys: a new home, same name and ports; 3 of the 4 others approve.
        rotated = new_home(net, 3, [registry, court, hospital], tmp_path / "tax-rotated")
        card = card_of(rotated)
        assert card.account != tax.account and card.peer_id != tax.peer_id
        start = time.time()
        change(net, tmp_path, ["--rotate", tax.name, "--card", str(rotated / "district.json")], [0, 2, 4], 0)
        now = validators(first)
        assert card.account in now["validators"] and tax.account not in now["validators"]
        epoch3 = epoch_start(net, first, now["version"])
        net.stop_node(3)
        proc = start_home(rotated)
        try:
            signers, top = signers_since(first, epoch3, card.account)
            phases.record("rotate tax", start, phases.logs([0, 2, 4]))
            assert tax.account not in signers, "the rotated-away account still signs"
            net.wait_for_height(top, timeout=180, nodes=[3])  # tax.api answers from the new home now
            assert block(tax.api, top)["hash"] == block(first, top)["hash"]
            fresh_node_and_same_chain(net, [registry.api, court.api, hospital.api, tax.api], bank.api)
            regrant_and_open(first, court.api, hospital.api, owner, grantee, dataset, grant_id, tmp_path)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert load.sent > 0 and not load.errors, load.errors[:3]
    print(f"[epochs] {load.sent} load records; figures: {json.dumps(phases.rows)}", flush=True)
    for row in phases.rows:
        for who, gap in row["longest_gap_s"].items():
            assert gap <= STALL_S, f"{who} went {gap} s without a commit during '{row['change']}'"


def fresh_node_and_same_chain(net: Testnet, running: list[str], removed: str) -> None:
    """The genesis observer, never started, syncs from genesis through every epoch; then every
    node has the same block at every height (the removed one: as far as it got)."""
    first, fresh = running[0], net.nodes[5]
    target = height_of(first)
    epochs = block(first, target)["epoch"]
    start = time.time()
    net.restart(5, timeout=120)
    net.wait_for_height(target, timeout=300, nodes=[5])
    print(f"[epochs] fresh node: {target} blocks, epochs 0-{epochs}, in {time.time() - start:.1f} s")
    assert block(fresh.api, target)["epoch"] == epochs >= 3
    synced = [h for _, h in commits(fresh.home / "logs" / "stdout.log")]
    assert synced and synced[-1] >= target
    up_to = min(height_of(url) for url in [*running, fresh.api])
    reference = hashes(first, up_to)
    for url in [*running[1:], fresh.api]:
        assert hashes(url, up_to) == reference, f"{url} has another chain"
    gone = min(height_of(removed), up_to)
    assert hashes(removed, gone) == reference[:gone], "the removed node has another chain"


def regrant_and_open(
    first: str, second: str, other: str, owner: Path, grantee: Path, dataset: str, grant_id: str, tmp: Path
) -> None:
    """2 of the grant's 4 proxies are validators still (bank removed, tax's PRE key rotated): the
    audit warns, the owner regrants to the current set, the grantee opens the dataset through it."""
    audit = cli_both("data", "audit", dataset, "--node", first)
    assert "proxies 2/4 (need 2)" in audit and f"p2pcity data regrant {grant_id}" in audit
    cli("data", "regrant", grant_id, "--key", str(owner), "--node", first, "--confirm-node", second)
    view: dict[str, Any] = httpx.get(f"{first}/grants/{grant_id}", timeout=10).json()
    assert (view["live_proxies"], view["warning"]) == (4, None)
    assert sorted(view["proxies"]) == sorted(validators(first)["validators"])
    opened = tmp / "opened.txt"
    cli("data", "get", dataset, "--key", str(grantee), "--node", other, "--out", str(opened))
    assert opened.read_bytes() == (tmp / "deed.txt").read_bytes()


def cli_both(*args: str) -> str:
    """stdout and stderr of a command that succeeds (warnings go to stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "p2pcity", *args], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def new_home(net: Testnet, i: int, boots: list[Any], home: Path) -> Path:
    """README "Rotating a district's keys": new keys in a new home, same name and addresses."""
    old = net.nodes[i]
    psk = NodeConfig.load(old.home).p2p.psk
    bootstrap = [arg for n in boots for arg in ("--bootstrap", f"{n.p2p}/p2p/{n.peer_id}")]
    genesis = str(net.dir / "genesis.json")
    api = old.api.removeprefix("http://")
    cli("init", "--home", str(home), "--district", old.name, "--genesis", genesis, "--p2p", old.p2p,
        "--api", api, "--psk", psk, *bootstrap)  # fmt: skip
    return home


def start_home(home: Path) -> subprocess.Popen[bytes]:
    (home / "logs").mkdir(exist_ok=True)
    with open(home / "logs" / "stdout.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-P", "-m", "p2pcity", "start", "--home", str(home)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def refuses_to_serve(removed: str, first: str, grantee: Path, grant_id: str, account: str) -> None:
    """The removed validator serves the grant no more: ``retired``, from the node the grantee asks
    and from the removed node itself, once it committed its own removal."""
    who = Identity.load(grantee)
    with Client(first) as client:
        chain = str(client.status()["chain_id"])
        tx, _ = send(client, who, AccessRequest(bytes.fromhex(grant_id), ""), wait=True)
        request = ReencryptRequest.sign(who.signer, chain, bytes.fromhex(grant_id), tx.hash)
        reply = collect(client, request)
    assert reply["complete"], reply["failures"]
    assert {f["code"] for f in reply["failures"] if f["proxy"] == account} == {"retired"}
    # The others keep it admitted a while (``service.REMOVED_PEER_GRACE_S``): it syncs the block
    # that removed it, a block behind when they cut it off, and knows it is retired.
    deadline = time.monotonic() + 120
    while account in validators(removed)["validators"]:
        assert time.monotonic() < deadline, "the removed node never committed its removal"
        time.sleep(1)
    with Client(removed) as client:
        own = client.post("/reencrypt", {"request": encode(request).hex()})
    assert {f["code"] for f in own["failures"] if f["proxy"] == account} == {"retired"}
    assert account not in {c["proxy"] for c in own["cfrags"]}


def test_longest_gap_counts_the_window_edges(tmp_path: Path) -> None:
    """The stall measure of the run above (fast, runs in CI)."""
    log = tmp_path / "stdout.log"
    log.write_text(
        "2026-12-01 10:00:01,000 a INFO p2pcity.node.service: committed height 5: 0 txs\n"
        "2026-12-01 10:00:02,500 a INFO p2pcity.node.other: committed height 6: not a commit line\n"
        "2026-12-01 10:00:03,000 a INFO p2pcity.node.service: committed heights 6-9 (synced): 0 txs\n"
    )
    assert [h for _, h in commits(log)] == [5, 9]
    t0 = datetime(2026, 12, 1, 10, 0, 0).timestamp()
    assert round(longest_gap(log, t0, t0 + 10).seconds, 3) == 7.0  # the last commit to the end
    assert round(longest_gap(log, t0 + 0.5, t0 + 3.5).seconds, 3) == 2.0  # between two commits
