"""The node's wire protocols, end to end between two Protocols over an in-process transport.

Both ends are the production code (request encoding, the serving handler,
strict decoding, the requester's loop); only the socket is replaced by a
function call that enforces the network's frame limit, so a response that
would not fit a real frame fails here as it would there.
"""

from __future__ import annotations

import pytest

from p2pcity.mempool import Mempool
from p2pcity.net import MessageTooLargeError
from p2pcity.node import protocols as protocols_module
from p2pcity.node.metrics import Metrics
from p2pcity.node.protocols import Protocols
from p2pcity.types.tx import Transaction
from tests.factories import CHAIN, big_grant_tx, identities

FRAME = 4 * 1024 * 1024  # p2pcity.net.NetConfig.max_frame_size


class Loopback:
    """Routes ``request`` to the other end's registered handler; counts requests and sizes."""

    def __init__(self) -> None:
        self.handlers: dict[str, object] = {}
        self.responses: list[int] = []

    def set_handler(self, protocol: str, handler: object) -> None:
        self.handlers[protocol] = handler

    async def request(self, peer: str, protocol: str, data: bytes, timeout: float | None = None) -> bytes:
        answer = await self.handlers[protocol]("client", data)  # type: ignore[operator]
        if len(answer) > FRAME:
            raise MessageTooLargeError(f"{protocol}: {len(answer)} bytes exceeds max_frame_size")
        self.responses.append(len(answer))
        return bytes(answer)


class NoView:
    def account_of(self, peer: str) -> bytes | None:
        return None

    def peer_of(self, account: bytes) -> str | None:
        return None

    def validator_peers(self, me: bytes) -> list[str]:
        return []

    def known_peers(self) -> set[str]:
        return set()

    def validators(self) -> tuple[bytes, ...]:
        return ()


def protocols(network: Loopback, txs: dict[bytes, Transaction]) -> Protocols:
    return Protocols(
        network=network,  # type: ignore[arg-type]
        me=b"\x00" * 32,
        view=NoView(),
        inbox=None,  # type: ignore[arg-type]
        mempool=Mempool(CHAIN, lambda _: 0),
        lookup_block=lambda _: None,
        find_tx=txs.get,
        committed_height=lambda: 0,
        metrics=Metrics(),
    )


def flood() -> dict[bytes, Transaction]:
    return {tx.hash: tx for tx in (big_grant_tx(who, 1) for who in identities(40, seed=12))}


async def test_fetching_many_big_transactions_comes_back_in_frames_that_fit() -> None:
    txs = flood()
    network = Loopback()
    protocols(network, txs).register()
    client = protocols(network, {})
    got = await client._fetch_txs("server", list(txs))
    assert {tx.hash for tx in got} == set(txs)  # 40 x 240 KB: all of them
    assert (
        len(network.responses) >= 9 and max(network.responses) <= protocols_module.TX_RESPONSE_BYTES + 300_000
    )


async def test_without_chunks_the_same_fetch_overflows_the_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted-bug control: one response for everything is 9.6 MB, and the fetch gets nothing."""
    monkeypatch.setattr(protocols_module, "TX_RESPONSE_BYTES", 1 << 40)
    txs = flood()
    network = Loopback()
    protocols(network, txs).register()
    got = await protocols(network, {})._fetch_txs("server", list(txs))
    assert got == []


async def test_a_peer_that_has_only_some_transactions_ends_the_loop() -> None:
    txs = flood()
    network = Loopback()
    half = dict(list(txs.items())[:10])
    protocols(network, half).register()
    got = await protocols(network, {})._fetch_txs("server", list(txs))
    assert {tx.hash for tx in got} == set(half)
