"""Batches and proposals pushed straight to each validator, instead of gossiped (issue 16).

Gossipsub delivers a message to a node once per mesh peer that forwards it:
with the mesh degree of 6, at n=16 each node read, decrypted and parsed each
batch about six times, and py-libp2p 0.8.1 spends milliseconds of CPU per
pubsub message, so the transaction topic alone outgrew the machine as the
network grew. A batch now goes once to each validator over the channel to it
(``Network.send``, one long-lived stream per peer): n-1 copies in the whole
network, one per receiver. When some validator is not connected to us, the
batch is also published on the ``txs`` topic, so that it still reaches it
through the mesh (a proposal's missing transactions are fetched from its
proposer in any case: ``Protocols._complete_proposal``).
``P2PCITY_TX_GOSSIP=1`` in the environment gossips every batch as before (for
A/B benchmarks).

A leader's compact proposal is pushed the same way (:class:`ConsensusPush`) to every
connected peer, validators and observers, and gossiped as well only when a validator
is out of reach: one copy per node instead of one per forwarding mesh peer (about
six at n=16), in one hop instead of up to two. Timeouts and timeout certificates
travel likewise, on the ``vote`` protocol that already takes them from validators
(``Protocols._on_direct``). ``P2PCITY_CONSENSUS_GOSSIP=1`` gossips all three as before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

import trio

from p2pcity.codec import DecodeError
from p2pcity.mempool import Batch, BatchError, Mempool, MempoolFull
from p2pcity.net import NetError, Network
from p2pcity.node.metrics import Metrics
from p2pcity.node.ports import Inbox, ValidatorView
from p2pcity.node.wire import CompactProposal, decode_gossip
from p2pcity.types.tx import TxError

log = logging.getLogger(__name__)
BATCH_PROTOCOL = "batch"
PROPOSAL_PROTOCOL = "proposal"
# Pushed proposals being completed (their missing transactions fetched) at once: a validator
# that floods proposals cannot make us hold more than this many; honest traffic is one a view.
MAX_COMPLETING = 16
# Batches waiting for the mempool; at most ~448 KiB each, so a bounded amount of memory.
QUEUE_LIMIT = 64
# A peer that reads slowly delays our next batch by at most this (the others get it at once).
PUSH_TIMEOUT = 2.0


def gossip_only(switch: str = "P2PCITY_TX_GOSSIP") -> bool:
    return os.environ.get(switch, "0") == "1"


async def push_to(network: Network, peers: list[str], protocol: str, data: bytes) -> None:
    """One copy of ``data`` to each of ``peers`` that is connected, concurrently, each bounded in time."""
    connected = network.connected_peers()

    async def one(peer: str) -> None:
        try:
            await network.send(peer, protocol, data, PUSH_TIMEOUT)
        except NetError as exc:
            log.debug("%s of %d bytes not pushed to %s: %s", protocol, len(data), peer[-8:], exc)

    async with trio.open_nursery() as nursery:
        for peer in peers:
            if peer in connected:
                nursery.start_soon(one, peer)


def unreached(network: Network, peers: list[str]) -> bool:
    """True when a push to ``peers`` now would miss some of them (not connected to us)."""
    connected = network.connected_peers()
    return any(p not in connected for p in peers)


class BatchPush:
    """Sends this node's batches to every validator and admits the batches pushed to it."""

    def __init__(
        self,
        *,
        network: Network,
        validator_peers: Callable[[], list[str]],
        mempool: Mempool,
        inbox: Inbox,
        metrics: Metrics,
    ) -> None:
        self.network = network
        self.validator_peers = validator_peers
        self.mempool = mempool
        self.inbox = inbox
        self.metrics = metrics
        self._send, self._receive = trio.open_memory_channel[bytes](QUEUE_LIMIT)
        self.gossip_only = gossip_only()

    def register(self) -> None:
        self.network.set_handler(BATCH_PROTOCOL, self._on_batch)

    async def run(self) -> None:
        """Admit pushed batches into the mempool, one at a time (the handler only queues)."""
        async for data in self._receive:
            try:
                batch = Batch.decode(data)
            except BatchError:
                self.metrics.rejected_messages.labels("tx batch").inc()
                continue
            self.admit(batch)

    def admit(self, batch: Batch) -> None:
        """Add a batch's transactions to the mempool (from gossip or a push alike)."""
        good, bad = batch.transactions()
        refused = len(bad)
        for tx in good:
            try:
                self.mempool.add(tx, local=False)
            except (TxError, MempoolFull):
                refused += 1  # stale, duplicate nonce, bad signature: normal for replays
        if refused:
            self.metrics.rejected_messages.labels("tx").inc(refused)
        if good:
            self.inbox.tx_arrived()

    async def _on_batch(self, _peer: str, data: bytes) -> bytes | None:
        try:
            self._send.send_nowait(data)
        except trio.WouldBlock:
            # Rule: a peer cannot make us hold more than QUEUE_LIMIT batches; the rest is dropped
            # (its transactions are fetched from the proposer if a block carries them).
            self.metrics.rejected_messages.labels("tx batch").inc()
        return None

    def unreached(self) -> bool:
        """True when a batch pushed now would miss some validator (not connected to us)."""
        return unreached(self.network, self.validator_peers())

    async def push(self, data: bytes) -> None:
        """One copy of ``data`` to each connected validator."""
        await push_to(self.network, self.validator_peers(), BATCH_PROTOCOL, data)


class ConsensusPush:
    """Sends our proposals, timeouts and TCs to every connected peer; takes the proposals
    pushed to us (timeouts and TCs arrive on the ``vote`` protocol)."""

    def __init__(
        self,
        *,
        network: Network,
        view: ValidatorView,
        me: bytes,
        complete: Callable[[CompactProposal, str], Awaitable[None]],
        metrics: Metrics,
    ) -> None:
        self.network = network
        self.view = view
        self.me = me
        self.complete = complete
        self.metrics = metrics
        self.gossip_only = gossip_only("P2PCITY_CONSENSUS_GOSSIP")
        self._nursery: trio.Nursery | None = None
        self._completing = 0

    def register(self) -> None:
        self.network.set_handler(PROPOSAL_PROTOCOL, self._on_proposal)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await trio.sleep_forever()

    async def push(self, data: bytes, protocol: str = PROPOSAL_PROTOCOL) -> bool:
        """Push to every connected peer; True when every validator was reached directly."""
        validators = self.view.validator_peers(self.me)
        peers = sorted(self.view.known_peers() | set(validators))
        await push_to(self.network, peers, protocol, data)
        return not unreached(self.network, validators)

    async def _on_proposal(self, peer: str, data: bytes) -> bytes | None:
        # Rule: only validators propose (the proposer, leader and signatures are the core's to check).
        if self.view.account_of(peer) is None:
            self.metrics.rejected_messages.labels("proposal").inc()
            return None
        # Rule: the message decodes strictly as a compact proposal.
        try:
            compact = decode_gossip(data)
        except DecodeError:
            compact = None
        if not isinstance(compact, CompactProposal):
            self.metrics.rejected_messages.labels("proposal").inc()
            return None
        # Rule: a bounded number of proposals are completed at once; a flood is dropped.
        if self._nursery is None or self._completing >= MAX_COMPLETING:
            self.metrics.rejected_messages.labels("proposal").inc()
            return None
        self._completing += 1
        self._nursery.start_soon(self._complete, compact, peer)
        return None

    async def _complete(self, compact: CompactProposal, peer: str) -> None:
        try:
            await self.complete(compact, peer)
        finally:
            self._completing -= 1
