"""Available but invisible, on a real 4-district testnet.

The owner shares a file with a grantee; a third key is refused; with one proxy
down the grantee still decrypts; after revoke the grantee is refused; and no
node's files or logs hold the plaintext.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pcity.client import Client, ClientError
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import SharingError
from p2pcity.sharing import client as sharing
from p2pcity.testnet import Testnet

pytestmark = pytest.mark.slow
FAST = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}
MARKER = b"PLAINTEXT-MARKER-7f3a9c-property-of-a-citizen"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    directory = tmp_path_factory.mktemp("sharing-net")
    testnet = Testnet.create(directory, 4, chain_id="share-city", config_overrides=FAST)
    testnet.start(timeout=90)
    try:
        yield testnet
    finally:
        testnet.down()


def _settle(net: Testnet, writer: Client, nodes: list[int]) -> None:
    net.wait_for_height(int(writer.status()["height"]), timeout=60, nodes=nodes)


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            try:
                if needle in path.read_bytes():
                    hits.append(path)
            except OSError:
                continue
    return hits


def test_share_refuse_survive_a_proxy_down_revoke_and_never_leak(net: Testnet, tmp_path: Path) -> None:
    owner, bank, court = Identity.generate(), Identity.generate(), Identity.generate()
    original = tmp_path / "referral.txt"
    original.write_bytes(MARKER + os.urandom(3 * 1024 * 1024) + MARKER)  # several envelope chunks
    entry, other = Client(net.nodes[0].api), Client(net.nodes[1].api)

    dataset = sharing.put_data(entry, owner, original, "referral history").id
    granted = sharing.grant(entry, owner, dataset, bank.public, confirm=[other], purpose="treatment")
    _settle(net, entry, [0, 1, 2, 3])  # reads go to another node than the writes

    copy = tmp_path / "bank.txt"
    sharing.get_data(other, bank, dataset, copy, purpose="treatment")
    assert copy.read_bytes() == original.read_bytes()

    with pytest.raises((SharingError, ClientError)):
        sharing.get_data(other, court, dataset, tmp_path / "court.txt")
    with pytest.raises((SharingError, ClientError)):
        sharing.get_data(other, court, dataset, tmp_path / "court.txt", grant_id=granted.id)

    net.kill(3)  # one proxy (and validator) down: t = 2 of n = 4 still reachable
    again = tmp_path / "bank-again.txt"
    sharing.get_data(other, bank, dataset, again, purpose="treatment")
    assert again.read_bytes() == original.read_bytes()

    sharing.revoke(entry, owner, dataset, bank.public)
    _settle(net, entry, [0, 1, 2])
    with pytest.raises((SharingError, ClientError)):
        sharing.get_data(other, bank, dataset, tmp_path / "bank-revoked.txt", grant_id=granted.id)

    log = sharing.audit(other, dataset)["accesses"]
    assert [a["granted"] for a in log].count(True) == 2
    assert any(not a["granted"] for a in log)

    for node in net.nodes:  # stores, blobs, logs, configs: nowhere in the clear
        assert _files_containing(node.home, MARKER) == [], node.name
    entry.close()
    other.close()
