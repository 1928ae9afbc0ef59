"""The node's wire protocols: gossip topics, direct requests, and how each input is checked.

Topics: ``consensus`` (compact proposals, timeouts, timeout certificates) and
``txs`` (batches of transactions). Direct protocols: ``vote`` (one-way, to
the next leader; also carries the timeout and TC that answer a validator stuck
in an earlier view), ``block`` (a block by id), ``txs`` (transactions by hash),
``height`` (the committed height) and ``sync`` (a stream of committed blocks).
Everything from a peer is decoded strictly; what fails is dropped and counted,
never raised.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import trio

from p2pcity._typing import TaskStatus
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.consensus import (
    ProposalReceived,
    TimeoutCertReceived,
    TimeoutReceived,
    VoteReceived,
)
from p2pcity.mempool import Batch, BatchError, Mempool
from p2pcity.net import GossipMessage, NetError, Network, Verdict
from p2pcity.node.metrics import Metrics
from p2pcity.node.ports import Inbox, ValidatorView
from p2pcity.node.push import BatchPush, ConsensusPush
from p2pcity.node.wire import (
    BlockRequest,
    CompactProposal,
    TxRequest,
    TxResponse,
    decode_gossip,
    encode_gossip,
    rebuild,
)
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal, Timeout, TimeoutCert, Vote, decode_message, encode_message
from p2pcity.types.tx import Transaction, TxError

log = logging.getLogger(__name__)
CONSENSUS_TOPIC = "consensus"
TX_TOPIC = "txs"
BATCH_INTERVAL = 0.05
MAX_BATCH = 1000
# A gossip batch stays under the 512 KiB gossip limit (encoding overhead included): bigger
# batches were dropped whole by py-libp2p's size check, now they are split.
BATCH_BYTES = 448 * 1024
# A transaction response stays well under the 4 MiB frame; the requester asks again for the rest.
TX_RESPONSE_BYTES = 1024 * 1024
REQUEST_TIMEOUT = 5.0
# Block fetches in flight to one peer. Its server admits 16 inbound streams per peer, all
# protocols together: fetches must leave room for votes, height surveys and sync ranges.
FETCHES_PER_PEER = 4


class _Decoded:
    """What a gossip validator decoded, kept for the receiver so each message is decoded once.

    py-libp2p runs the validator and then delivers the same bytes; decoding a
    batch of a thousand transactions twice would double the hot path. Bounded:
    entries whose delivery never comes (dropped, duplicate) age out.
    """

    LIMIT = 512

    def __init__(self) -> None:
        self._items: OrderedDict[bytes, object] = OrderedDict()

    def keep(self, data: bytes, value: object) -> None:
        self._items[data] = value
        if len(self._items) > self.LIMIT:
            self._items.popitem(last=False)

    def take(self, data: bytes) -> object | None:
        return self._items.pop(data, None)


class Protocols:
    """The node's :class:`~p2pcity.node.ports.Outbox` and :class:`~p2pcity.node.ports.BlockSource`.

    Wired through ports: ``inbox`` (the driver's queue), ``view`` (who is a
    validator, whose peer is whose), ``lookup_block`` (uncommitted or committed
    blocks, to serve), ``find_tx`` (pending or committed transactions, to
    serve) and ``committed_height``. Gossip arrivals go into ``mempool``
    directly (``Mempool.add`` is synchronous: it never interleaves with a
    driver step, see ``service``).
    """

    def __init__(
        self,
        *,
        network: Network,
        me: bytes,
        view: ValidatorView,
        inbox: Inbox,
        mempool: Mempool,
        lookup_block: Callable[[bytes], Block | None],
        find_tx: Callable[[bytes], Transaction | None],
        committed_height: Callable[[], int],
        committed_epoch: Callable[[], int] = lambda: 0,
        metrics: Metrics,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.clock_ms = clock_ms  # read when a proposal arrives: the block time rule needs it
        self.network = network
        self.me = me
        self.view = view
        self.inbox = inbox
        self.mempool = mempool
        self.lookup_block = lookup_block
        self.find_tx = find_tx
        self.committed_height = committed_height
        self.committed_epoch = committed_epoch
        self.metrics = metrics
        self._decoded = _Decoded()
        self._fetch_slots: dict[str, trio.Semaphore] = {}
        self.batches = BatchPush(
            network=network,
            validator_peers=lambda: view.validator_peers(me),
            mempool=mempool,
            inbox=inbox,
            metrics=metrics,
        )
        self.consensus_push = ConsensusPush(
            network=network, view=view, me=me, complete=self._complete_proposal, metrics=metrics
        )

    def register(self) -> None:
        net = self.network
        net.set_handler("vote", self._on_direct)
        net.set_handler("block", self._serve_block)
        net.set_handler("txs", self._serve_txs)
        net.set_handler("height", self._serve_height)
        self.batches.register()
        self.consensus_push.register()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        net = self.network
        consensus = net.subscribe(CONSENSUS_TOPIC, self._validate_consensus)
        txs = net.subscribe(TX_TOPIC, self._validate_txs)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._consensus_receiver, consensus, nursery)
            nursery.start_soon(self._tx_receiver, txs)
            nursery.start_soon(self._batcher)
            nursery.start_soon(self.batches.run)
            nursery.start_soon(self.consensus_push.run)
            task_status.started()

    # --- gossip: validation before forwarding -------------------------------

    def _validate_consensus(self, _topic: str, data: bytes, origin: str) -> Verdict:
        # Rule: only validators publish consensus messages.
        if self.view.account_of(origin) is None:
            return Verdict.REJECT
        # Rule: the message decodes strictly (signatures are the core's to check, once).
        try:
            self._decoded.keep(data, decode_gossip(data))
        except DecodeError:
            self.metrics.rejected_messages.labels("consensus").inc()
            return Verdict.REJECT
        return Verdict.ACCEPT

    def _validate_txs(self, _topic: str, data: bytes, _origin: str) -> Verdict:
        # Rule: a batch decodes strictly; each transaction's signature is checked once, on arrival.
        try:
            self._decoded.keep(data, Batch.decode(data))
        except BatchError:
            self.metrics.rejected_messages.labels("tx batch").inc()
            return Verdict.REJECT
        return Verdict.ACCEPT

    # --- gossip: receivers ----------------------------------------------------

    async def _consensus_receiver(
        self, channel: trio.MemoryReceiveChannel[GossipMessage], nursery: trio.Nursery
    ) -> None:
        async for message in channel:
            decoded = self._decoded.take(message.data)
            if not isinstance(decoded, CompactProposal | Timeout | TimeoutCert):
                try:
                    decoded = decode_gossip(message.data)
                except DecodeError:
                    continue
            if isinstance(decoded, CompactProposal):
                nursery.start_soon(self._complete_proposal, decoded, message.from_peer)
            elif isinstance(decoded, Timeout):
                self.inbox.submit(TimeoutReceived(decoded))
            elif isinstance(decoded, TimeoutCert):
                self.inbox.submit(TimeoutCertReceived(decoded))

    async def _complete_proposal(self, compact: CompactProposal, origin: str) -> None:
        """Rebuild a proposal from the mempool, fetching the transactions we lack from its sender."""
        found: dict[bytes, Transaction] = {}
        missing: list[bytes] = []
        for tx_hash in compact.tx_hashes:
            tx = self.mempool.get(tx_hash)
            if tx is None:
                missing.append(tx_hash)
            else:
                found[tx_hash] = tx
        if missing:
            for tx in await self._fetch_txs(origin, missing):
                found[tx.hash] = tx
        if len(found) < len(set(compact.tx_hashes)):
            log.info(
                "proposal for view %d: %d transactions unavailable",
                compact.header.view,
                len(set(compact.tx_hashes)) - len(found),
            )
            return
        proposal = rebuild(compact, tuple(found[h] for h in compact.tx_hashes))
        self.inbox.submit(ProposalReceived(proposal, compact.header.proposer, now_ms=self.clock_ms()))

    async def _fetch_txs(self, peer: str, hashes: list[bytes]) -> list[Transaction]:
        """The transactions with these hashes, in as many requests as the peer's chunks need."""
        missing = list(dict.fromkeys(hashes))
        out: list[Transaction] = []
        while missing:
            got = await self._fetch_tx_chunk(peer, missing)
            if not got:
                break  # the peer has none of the rest (or failed): the caller sees what is missing
            out += got
            have = {tx.hash for tx in got}
            missing = [h for h in missing if h not in have]
        return out

    async def _fetch_tx_chunk(self, peer: str, hashes: list[bytes]) -> list[Transaction]:
        try:
            raw = await self.network.request(
                peer, "txs", encode(TxRequest(tuple(hashes))), REQUEST_TIMEOUT
            )
            response = decode(TxResponse, raw)
        except (NetError, DecodeError) as exc:
            log.info("could not fetch %d transactions from %s: %s", len(hashes), peer[-8:], exc)
            return []
        wanted = set(hashes)
        out = []
        for item in response.txs:
            try:
                tx = Transaction.decode(item)
            except TxError:
                continue
            if tx.hash in wanted:
                out.append(tx)
        return out

    async def _tx_receiver(self, channel: trio.MemoryReceiveChannel[GossipMessage]) -> None:
        async for message in channel:
            batch = self._decoded.take(message.data)
            try:
                if not isinstance(batch, Batch):
                    batch = Batch.decode(message.data)
            except BatchError:
                continue
            self.batches.admit(batch)

    async def _batcher(self) -> None:
        """Send locally submitted transactions in batches (one message carries many): pushed to
        each validator, and gossiped too when some validator is out of our reach (``batches``)."""
        while True:
            await trio.sleep(BATCH_INTERVAL)
            while self.mempool.unbatched:
                batch = self.mempool.take_batch(MAX_BATCH, BATCH_BYTES)
                if not batch:
                    break
                data = Batch.of(batch).encode()
                if self.batches.gossip_only or self.batches.unreached():
                    try:
                        await self.network.publish(TX_TOPIC, data)
                    except NetError as exc:
                        log.warning("could not gossip a batch of %d transactions: %s", len(batch), exc)
                if not self.batches.gossip_only:
                    await self.batches.push(data)

    # --- outbound consensus -----------------------------------------------------

    async def publish_consensus(self, message: Proposal | Timeout | TimeoutCert) -> None:
        data = encode_gossip(message)
        if not self.consensus_push.gossip_only:
            if isinstance(message, Proposal):
                reached = await self.consensus_push.push(data)
            else:
                reached = await self.consensus_push.push(encode_message(message), "vote")
            if reached:
                return  # every validator has it, in one hop (``push``)
        try:
            await self.network.publish(CONSENSUS_TOPIC, data)
        except NetError as exc:
            log.warning("could not publish %s: %s", type(message).__name__, exc)

    async def send_vote(self, to: bytes, vote: Vote) -> None:
        await self._send(to, vote)

    async def send_direct(self, to: bytes, message: Timeout | TimeoutCert) -> None:
        await self._send(to, message)

    async def _send(self, to: bytes, message: Vote | Timeout | TimeoutCert) -> None:
        peer = self.view.peer_of(to)
        if peer is None:
            return
        try:
            await self.network.send(peer, "vote", encode_message(message), REQUEST_TIMEOUT)
        except NetError as exc:
            log.debug(
                "%s for view %d not delivered to %s: %s",
                type(message).__name__, message.view, peer[-8:], exc,
            )

    async def fetch_block(self, block_id: bytes, hint: bytes | None) -> Block | None:
        """Ask the hinted peer, then every other connected validator, for a block."""
        peers = []
        if hint is not None and (p := self.view.peer_of(hint)) is not None:
            peers.append(p)
        connected = self.network.connected_peers()
        peers += [p for p in self.view.validator_peers(self.me) if p not in peers and p in connected]
        request = encode(BlockRequest(block_id))
        for peer in peers:
            slots = self._fetch_slots.setdefault(peer, trio.Semaphore(FETCHES_PER_PEER))
            try:
                async with slots:
                    self.metrics.block_fetches.inc()
                    raw = await self.network.request(peer, "block", request, REQUEST_TIMEOUT)
                if not raw:
                    continue
                block = Block.decode(raw)
            except (NetError, DecodeError) as exc:
                log.debug("block %s not fetched from %s: %s", block_id.hex()[:16], peer[-8:], exc)
                continue
            if block.id == block_id:
                return block
        return None

    # --- handlers: what we answer ------------------------------------------------

    async def _on_direct(self, peer: str, data: bytes) -> bytes | None:
        # Rule: only validators send consensus messages (signatures are the core's to check).
        if self.view.account_of(peer) is None:
            return None
        try:
            message = decode_message(data)
        except DecodeError:
            self.metrics.rejected_messages.labels("vote").inc()
            return None
        if isinstance(message, Vote):
            self.inbox.submit(VoteReceived(message))
        elif isinstance(message, Timeout):
            self.inbox.submit(TimeoutReceived(message))
        elif isinstance(message, TimeoutCert):
            self.inbox.submit(TimeoutCertReceived(message))
        return None

    async def _serve_block(self, _peer: str, data: bytes) -> bytes | None:
        request = decode(BlockRequest, data)
        block = self.lookup_block(request.block_id)
        return block.encoded if block is not None else b""

    async def _serve_txs(self, _peer: str, data: bytes) -> bytes | None:
        request = decode(TxRequest, data)
        out: list[bytes] = []
        size = 0
        for tx_hash in request.hashes:
            tx = self.find_tx(tx_hash)
            if tx is None:
                continue
            # A prefix that fits one frame; the requester asks again for the rest.
            if out and size + len(tx.encoded) > TX_RESPONSE_BYTES:
                break
            out.append(tx.encoded)
            size += len(tx.encoded)
        return encode(TxResponse(tuple(out)))

    async def _serve_height(self, _peer: str, _data: bytes) -> bytes | None:
        # Height and epoch: a peer one epoch behind syncs even when few blocks behind (sync.behind).
        return self.committed_height().to_bytes(8, "big") + self.committed_epoch().to_bytes(8, "big")
