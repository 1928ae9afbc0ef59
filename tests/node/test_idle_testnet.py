"""An idle chain of real node processes (``consensus.empty_blocks = false``): it proposes nothing
until there is work, commits a transaction that finds it idle on every node, and replaces a
leader that crashed while it idled (a view change from idle).

Real processes on 127.0.0.1, 4 validators, one testnet for the module (the tests run in
order). Under ``@pytest.mark.soak`` (a minute or more on the shared machine):

    .venv/bin/python -m pytest -q -m soak tests/node/test_idle_testnet.py

The driver's rule itself, and the controls that show each part of it matters, are
``tests/node/test_idle_chain.py`` (MockClock, in CI).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.testnet import Testnet
from p2pcity.types.tx import RecordPut, Transaction

pytestmark = pytest.mark.soak
IDLE = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300, "empty_blocks": False}}
DEADLINE = 120.0  # seconds: a loaded shared machine; nothing here asserts on timing


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    testnet = Testnet.create(
        tmp_path_factory.mktemp("idle"), 4, chain_id="idle-city", config_overrides=IDLE
    )
    testnet.start(timeout=120)
    try:
        yield testnet
    finally:
        testnet.down()


def metric(net: Testnet, node: int, name: str) -> float:
    for line in httpx.get(net.nodes[node].api + "/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def waiting_leader(net: Testnet, alive: list[int], seconds: float = 30.0) -> int | None:
    """The node that leads the current view and waits for work. None when none does: the
    last view's QC was not formed (a vote lost at start-up, say), so the chain idles with
    everyone in that view, and work times its leader out like any other."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leaders = [i for i in alive if metric(net, i, "p2pcity_leader_waiting") == 1]
        assert len(leaders) <= 1, leaders
        if leaders:
            return leaders[0]
        time.sleep(0.5)
    return None


def submit(net: Testnet, node: int, who: Identity, name: str) -> str:
    with Client(net.nodes[node].api) as client:
        chain = client.status()["chain_id"]
        nonce = client.next_nonce(who.signer.public_key)
        body = RecordPut(name, 1, hashlib.sha256(name.encode()).digest(), 1, "text/plain", "{}")
        return client.submit(Transaction.create(who.signer, chain, nonce, body))


def committed_on(net: Testnet, tx: str, nodes: list[int]) -> int:
    """Wait until every node in ``nodes`` reports ``tx`` committed; its height."""
    heights = set()
    for i in nodes:
        with Client(net.nodes[i].api) as client:
            heights.add(client.wait_for_tx(tx, timeout=DEADLINE)["receipt"]["height"])
    assert len(heights) == 1
    return heights.pop()


def quiet_window(net: Testnet, seconds: float = 10.0) -> bool:
    """No block and no view timeout anywhere for ``seconds`` (ten base timeouts: an armed
    timer would have fired)."""
    heights = net.heights()
    timeouts = sum(metric(net, i, "p2pcity_view_timeouts_total") for i in range(4))
    time.sleep(seconds)
    after = sum(metric(net, i, "p2pcity_view_timeouts_total") for i in range(4))
    return net.heights() == heights and after == timeouts


def test_an_idle_chain_proposes_nothing(net: Testnet) -> None:
    """After its start-up (each new core times out once if nothing happens, and those late
    timeouts can cost a view change or two), the chain settles: no block, no timeout."""
    deadline = time.monotonic() + DEADLINE
    while not quiet_window(net):
        assert time.monotonic() < deadline, "the idle chain never settled"


def test_a_transaction_at_an_idle_chain_commits_on_every_node(net: Testnet) -> None:
    leader = waiting_leader(net, [0, 1, 2, 3])
    entry = (leader or 0) + 1  # not the leader: the transaction must travel to it
    tx = submit(net, entry, Identity.generate(), "deed/idle-1")
    height = committed_on(net, tx, [0, 1, 2, 3])
    net.wait_for_height(height, timeout=DEADLINE)


def test_a_leader_that_crashed_while_idle_is_replaced(net: Testnet) -> None:
    found = waiting_leader(net, [0, 1, 2, 3])
    leader = 3 if found is None else found  # none waits: any node (it may be the one awaited)
    net.kill(leader)
    alive = [i for i in range(4) if i != leader]
    tx = submit(net, alive[0], Identity.generate(), "deed/idle-2")
    height = committed_on(net, tx, alive)  # a view change from idle: the others time out
    net.restart(leader)
    net.wait_for_height(height, timeout=DEADLINE)  # the restarted node catches up
    deadline = time.monotonic() + DEADLINE
    while not quiet_window(net):
        assert time.monotonic() < deadline, "the chain never settled after the restart"
    top = min(h or 0 for h in net.heights())
    for height in range(1, top + 1):
        hashes = {httpx.get(f"{n.api}/blocks/{height}", timeout=30).json()["hash"] for n in net.nodes}
        assert len(hashes) == 1, height
