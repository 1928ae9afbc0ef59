"""An unmodified js-libp2p node joins a p2pcity private network as an admitted observer.

It uses what p2pcity wrote: the observer's libp2p key file (spec protobuf) and the
chain's swarm.key (spec format); it speaks TCP + pnet + Noise + Yamux + gossipsub
to real node processes. It receives consensus and txs gossip, and publishes a
transaction batch (bytes our codec built: the JS side does not reimplement it)
that the chain commits. With a wrong swarm key neither side lets it in.

Run alone: ``.venv/bin/python -m pytest tests/interop -v`` (first run installs
the pinned npm packages, see jspeer.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pcity.client import Client
from p2pcity.config import NodeConfig
from p2pcity.crypto.keys import Identity
from p2pcity.mempool import Batch
from p2pcity.net.swarm_key import encode_swarm_key
from p2pcity.testnet import Testnet
from p2pcity.types.tx import RecordPut, Transaction

from . import gossip_everything
from .jspeer import js_install_dir, js_peer

pytestmark = pytest.mark.slow
CHAIN = "interop-city"
FAST = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}
VALIDATORS = 2
CONSENSUS, TXS = f"/p2pcity/{CHAIN}/consensus", f"/p2pcity/{CHAIN}/txs"


@pytest.fixture(scope="module")
def install() -> Path:
    return js_install_dir()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, install: Path) -> Iterator[Testnet]:
    """Validators as real processes; the observer's home is never started: the JS peer is it."""
    net = Testnet.create(
        tmp_path_factory.mktemp("interop"), VALIDATORS, observers=1, chain_id=CHAIN, config_overrides=FAST
    )
    try:
        with gossip_everything():
            for i in range(VALIDATORS):
                net.restart(i, wait=False)
        net.wait_ready(timeout=90, nodes=list(range(VALIDATORS)))
        yield net
    finally:
        net.down()


def _config(net: Testnet, swarm_key: Path) -> dict[str, object]:
    observer = net.nodes[VALIDATORS]
    return {
        "key": str(observer.home / "keys" / "p2p.key"),
        "swarm_key": str(swarm_key),
        "listen": observer.p2p,  # where the validators' static peers say the observer is
        "dial": [f"{n.p2p}/p2p/{n.peer_id}" for n in net.nodes[:VALIDATORS]],
        "topics": [CONSENSUS, TXS],
    }


def _records(who: Identity, client: Client, count: int, prefix: str, skip: int = 0) -> list[Transaction]:
    chain_id = client.status()["chain_id"]
    nonce = client.next_nonce(who.signer.public_key) + skip
    return [
        Transaction.create(
            who.signer,
            chain_id,
            nonce + i,
            RecordPut(
                f"{prefix}/doc-{i}",
                1,
                hashlib.sha256(f"{prefix}{i}".encode()).digest(),
                1,
                "text/plain",
                "{}",
            ),
        )
        for i in range(count)
    ]


def test_js_observer_receives_gossip_and_its_batch_commits(
    chain: Testnet, install: Path, tmp_path: Path
) -> None:
    psk = NodeConfig.load(chain.nodes[0].home).p2p.psk
    (tmp_path / "swarm.key").write_bytes(encode_swarm_key(psk))
    validators = {n.peer_id for n in chain.nodes[:VALIDATORS]}
    with js_peer(install, _config(chain, tmp_path / "swarm.key"), tmp_path) as js:
        ready = js.wait_for(lambda e: e["event"] == "ready", 30, "start")
        assert ready["peer_id"] == chain.nodes[VALIDATORS].peer_id  # the key file p2pcity wrote
        js.wait_for(lambda e: e["event"] == "identified" and e["peer"] in validators, 60, "identify")
        js.wait_for(
            lambda e: e["event"] == "message" and e["topic"] == CONSENSUS and e["from"] in validators,
            60,
            "consensus gossip from a validator",
        )
        alice = Identity.generate()
        with Client(chain.nodes[0].api) as client:
            submitted = _records(alice, client, 3, "from-python")
            for tx in submitted:
                client.submit(tx)
            js.wait_for(
                lambda e: e["event"] == "message" and e["topic"] == TXS and e["from"] in validators,
                60,
                "a txs batch from a validator",
            )
            for tx in submitted:
                client.wait_for_tx(tx.hash.hex(), timeout=60)
            # A batch the JS peer publishes: built and signed here, carried as opaque bytes.
            batch = _records(alice, client, 5, "from-js")
            js.send({"cmd": "publish", "topic": TXS, "hex": Batch.of(batch).encode().hex()})
            published = js.wait_for(lambda e: e["event"].startswith("publish"), 30, "publish result")
            assert published["event"] == "published", published
            assert set(published["recipients"]) & validators, published
            committed = [client.wait_for_tx(tx.hash.hex(), timeout=60) for tx in batch]
        assert all(tx["receipt"]["ok"] for tx in committed)
    for node in chain.nodes[:VALIDATORS]:
        with Client(node.api) as client:
            assert client.tx(batch[-1].hash.hex())["status"] == "committed", node.name


def _pnet_refusals(net: Testnet, since: float) -> list[str]:
    lines = []
    for node in net.nodes[:VALIDATORS]:
        for line in (node.home / "logs" / "node.log").read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            message = str(record.get("msg", ""))
            if message.startswith("pnet: refused") and float(record.get("ts", since)) >= since:
                lines.append(message)
    return lines


def test_js_peer_with_a_wrong_swarm_key_is_refused_on_both_sides(
    chain: Testnet, install: Path, tmp_path: Path
) -> None:
    (tmp_path / "wrong.key").write_bytes(encode_swarm_key("a5" * 32))
    started = time.time()
    with js_peer(install, _config(chain, tmp_path / "wrong.key"), tmp_path) as js:
        js.wait_for(lambda e: e["event"] == "ready", 30, "start")
        failed = js.wait_for(lambda e: e["event"] == "dial-failed", 30, "its dial to fail")
        # The validators' reconnect loop dials the observer's address on its own schedule,
        # which a loaded machine stretches: wait for it rather than sample once.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            refusals = _pnet_refusals(chain, started)
            if any("inbound" in r for r in refusals) and any("outbound" in r for r in refusals):
                break
            time.sleep(0.3)
        assert not [e for e in js.events if e["event"] in ("connected", "identified", "message")], js.events
    assert any(r.startswith("pnet: refused inbound connection from 127.0.0.1:") for r in refusals), refusals
    # The validators also dial the observer's address, where the JS peer listens.
    assert any(r.startswith("pnet: refused outbound connection to 127.0.0.1:") for r in refusals), refusals
    print("js side:", failed["error"])
    print("our side:", refusals[0])
