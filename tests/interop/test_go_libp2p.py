"""The go-libp2p daemon joins a p2pcity chain as an admitted observer, without a private network.

The ``p2pd`` that PyPI ships (in the hivemind wheel) links no pnet code at all, so
it cannot join a chain that has a swarm key; this test runs a chain without one
and checks the rest against go-libp2p: it reads the observer's spec key file
(and refuses py-libp2p's 32-byte seed form, the reason for the spec form),
connects over Noise + Yamux, receives consensus and txs gossip, and publishes a
batch that the chain commits. The spec pnet wire is checked against js-libp2p
in test_js_libp2p.py.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.mempool import Batch
from p2pcity.testnet import Testnet
from p2pcity.types.tx import RecordPut, Transaction

from . import gossip_everything, p2pd

pytestmark = pytest.mark.slow
CHAIN = "interop-go"
FAST = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}
VALIDATORS = 2
CONSENSUS, TXS = f"/p2pcity/{CHAIN}/consensus", f"/p2pcity/{CHAIN}/txs"


@pytest.fixture(scope="module")
def binary() -> Path:
    return p2pd.p2pd_binary()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, binary: Path) -> Iterator[Testnet]:
    net = Testnet.create(
        tmp_path_factory.mktemp("interop-go"),
        VALIDATORS,
        observers=1,
        chain_id=CHAIN,
        psk=False,
        config_overrides=FAST,
    )
    try:
        with gossip_everything():
            for i in range(VALIDATORS):
                net.restart(i, wait=False)
        net.wait_ready(timeout=90, nodes=list(range(VALIDATORS)))
        yield net
    finally:
        net.down()


def _wait_message(control: p2pd.Control, topic: str, origins: set[str], timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            origin, topics, data = p2pd.next_message(control, deadline - time.monotonic())
        except TimeoutError:
            break
        seen.append((origin, topics, len(data)))
        if topic in topics and origin in origins:
            return data
    raise AssertionError(f"no {topic} message from {origins} within {timeout:.0f} s; saw {seen[-5:]}")


def test_go_daemon_reads_our_key_gets_gossip_and_its_batch_commits(
    chain: Testnet, binary: Path, tmp_path: Path
) -> None:
    observer = chain.nodes[VALIDATORS]
    validators = {n.peer_id for n in chain.nodes[:VALIDATORS]}
    with p2pd.daemon(binary, observer.home / "keys" / "p2p.key", observer.p2p, tmp_path) as sock:
        control = p2pd.Control(sock)
        consensus, txs = p2pd.Control(sock), p2pd.Control(sock)
        try:
            peer_id, _addrs = p2pd.identify(control)
            assert peer_id == observer.peer_id  # go read the key file p2pcity wrote
            p2pd.subscribe(consensus, CONSENSUS)
            p2pd.subscribe(txs, TXS)
            for node in chain.nodes[:VALIDATORS]:
                p2pd.connect(control, node.peer_id, node.p2p)
            assert validators <= p2pd.connected_peers(control)
            _wait_message(consensus, CONSENSUS, validators, 60)
            alice = Identity.generate()
            with Client(chain.nodes[0].api) as client:
                chain_id = client.status()["chain_id"]
                nonce = client.next_nonce(alice.signer.public_key)

                def record(i: int, prefix: str) -> Transaction:
                    digest = hashlib.sha256(f"{prefix}{i}".encode()).digest()
                    body = RecordPut(f"{prefix}/doc-{i}", 1, digest, 1, "text/plain", "{}")
                    return Transaction.create(alice.signer, chain_id, nonce + i, body)

                first = [record(i, "from-python") for i in range(2)]
                for tx in first:
                    client.submit(tx)
                _wait_message(txs, TXS, validators, 60)
                for tx in first:
                    client.wait_for_tx(tx.hash.hex(), timeout=60)
                batch = [record(i, "from-go") for i in range(2, 6)]
                p2pd.publish(control, TXS, Batch.of(batch).encode())
                committed = [client.wait_for_tx(tx.hash.hex(), timeout=60) for tx in batch]
            assert all(tx["receipt"]["ok"] for tx in committed)
        finally:
            for c in (control, consensus, txs):
                c.close()


def test_go_refuses_the_old_32_byte_seed_key_file(binary: Path, tmp_path: Path) -> None:
    # Control for the spec form: the py-libp2p 0.8.1 encoding of the same kind of key.
    old = tmp_path / "old.key"
    old.write_bytes(create_new_key_pair().private_key.serialize())
    result = subprocess.run(
        [
            str(binary),
            f"-id={old}",
            "-hostAddrs=/ip4/127.0.0.1/tcp/0",
            f"-listen=/unix{tmp_path / 's.sock'}",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "ed25519" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
