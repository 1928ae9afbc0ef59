"""The ciphertext outlives the node it was put on: a real 4-district testnet (f = 1).

The owner puts a dataset on node 0; every validator copies the blob once the registration
commits (checked with HEAD, which answers from the node's own disk only, never fetching).
Node 0 is SIGKILLed and the grantee opens from node 1; with one more node down (f + 1 of
n down: no more commits) a grantee's access request committed before still opens, and so
does the owner. The figure printed is the replication time of a 1 MB blob; the 100 MB
figure is in ``bench/bench_replication.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import client as sharing
from p2pcity.testnet import Testnet
from p2pcity.types.tx import AccessRequest, Transaction
from tests.processes import started_testnet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    yield from started_testnet(tmp_path_factory.mktemp("replica-net"), 4, "replica-city", timeout=120)


def stored_on(net: Testnet, i: int, blob_hash: str) -> bool:
    try:
        return httpx.head(f"{net.nodes[i].api}/blobs/{blob_hash}", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def wait_replicated(net: Testnet, blob_hash: str, nodes: list[int], timeout: float = 180) -> float:
    start = time.monotonic()
    while not all(stored_on(net, i, blob_hash) for i in nodes):
        assert time.monotonic() - start < timeout, [stored_on(net, i, blob_hash) for i in nodes]
        time.sleep(0.1)
    return time.monotonic() - start


def test_put_replicate_kill_the_holder_and_f_more_and_still_open(net: Testnet, tmp_path: Path) -> None:
    owner, bank = Identity.generate(), Identity.generate()
    original = tmp_path / "deed.pdf"
    original.write_bytes(os.urandom(1_000_000))
    a, b, c = (Client(net.nodes[i].api) for i in range(3))
    put = sharing.put_data(a, owner, original, "deed")
    blob_hash = a.get(f"/datasets/{put.id.hex()}")["ciphertext_sha256"]
    took = wait_replicated(net, blob_hash, [1, 2, 3])
    print(f"\nreplication of 1 MB to 3 more validators: {took:.2f} s after the register committed")
    sharing.grant(a, owner, put.id, bank.public, confirm=[b], purpose="loan", max_uses=3)
    net.wait_for_height(int(a.status()["height"]), timeout=60, nodes=[1, 2, 3])

    net.kill(0)  # the only node the owner ever talked to
    first = tmp_path / "bank.pdf"
    sharing.get_data(b, bank, put.id, first, purpose="loan")
    assert first.read_bytes() == original.read_bytes()

    # An access request committed while a quorum is up, then f more nodes go down.
    grant_id = sharing.live_grants(b, put.id, bank.signer.public_key, int(time.time() * 1000), "loan")[
        0
    ].grant_id
    nonce = b.next_nonce(bank.signer.public_key)
    request = Transaction.create(bank.signer, "replica-city", nonce, AccessRequest(grant_id, "loan"))
    b.submit(request)
    assert b.wait_for_tx(request.hash.hex(), timeout=120)["receipt"]["ok"]
    net.wait_for_height(int(b.status()["height"]), timeout=60, nodes=[1, 2, 3])
    net.kill(3)
    second = tmp_path / "bank-again.pdf"
    sharing.get_data(c, bank, put.id, second, purpose="loan", grant_id=grant_id, request_tx=request.hash)
    assert second.read_bytes() == original.read_bytes()
    mine = tmp_path / "owner.pdf"
    sharing.get_data(c, owner, put.id, mine)
    assert mine.read_bytes() == original.read_bytes()
    for client in (a, b, c):
        client.close()
