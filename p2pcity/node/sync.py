"""Catching up: a node that was down, or a new observer, fetches committed blocks from peers.

The syncer only asks and collects; the replica (the one writer) verifies and
commits. A block is committed only with proof that it is final, judged by the
consensus package's own rules, not a copy of them: each block passes the
consensus verifier (chain, leader of its view, body, signature), links to its
parent as the block tree requires, carries a valid justify QC, and the last
committed one is the head of a three-chain (``p2pcity.consensus.safety``).
The ancestors of a final block are final.

Epochs. Each batch is verified against the set of the committed epoch only
(``recovery.epoch_verifier``); a block of a later epoch stops it. The last
block of an epoch comes with its hand-over proof (``types.epoch.EpochEnd``:
the certificates of the three-chain that made it final, signed by that
epoch's set), which is how a node syncing from genesis crosses into the next
epoch; the replica commits up to that block, and the next batch is verified
against the set its state then holds. A node one epoch behind syncs even when
it is fewer than ``SYNC_THRESHOLD`` blocks behind (:func:`behind`): the
consensus of the new epoch refuses it messages, so it cannot close the gap itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import trio

from p2pcity.chain import queries
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.consensus.epochs import epoch_end_problem
from p2pcity.consensus.safety import three_chain
from p2pcity.consensus.verifier import Verifier
from p2pcity.net import NetError, Network
from p2pcity.node.metrics import Metrics
from p2pcity.node.ports import CommittedChain, Inbox, ValidatorView
from p2pcity.node.replica import SyncedBlocks
from p2pcity.node.wire import MAX_SYNC_BATCH, SyncItem, SyncRequest
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.epoch import EpochEnd, Waypoint

log = logging.getLogger(__name__)
SYNC_INTERVAL = 2.0
# Gaps this small are closed by consensus itself (fetching ancestors of a proposal).
SYNC_THRESHOLD = 3


def is_syncing(ours: int, best_peer_height: int | None, *, alone: bool = False) -> bool:
    """Whether a node at committed height ``ours`` is catching up.

    One rule for the /status ``syncing`` flag, the API's 503 on writes and the
    syncer's trigger. A node that has heard no peer's height yet cannot know it
    is current, so it says it is syncing, unless it has no one to hear from
    (``alone``: the only validator). (Before: it said so only for a 5 s start-up
    grace; on a loaded machine a restarted node often had heard nobody by then
    and accepted writes at its old height: the CI nemesis caught it.)
    """
    if best_peer_height is None:
        return not alone
    return best_peer_height >= ours + SYNC_THRESHOLD


def behind(ours: int, our_epoch: int, peer: int, peer_epoch: int) -> bool:
    """Whether a node at ``ours`` in ``our_epoch`` should sync from a peer at ``peer``/``peer_epoch``.

    One rule for the node's syncer and the node-layer simulator's.
    """
    return is_syncing(ours, peer) or (peer_epoch > our_epoch and peer > ours)


def final_synced(
    head: Block, job: SyncedBlocks, verifier: Verifier, waypoint: Waypoint | None = None
) -> tuple[list[Block], list[QuorumCert]]:
    """The blocks of ``job`` proven final on top of committed ``head``, each with the QC that certifies it.

    With a ``waypoint`` (a trusted checkpoint), a batch holding another block at its height
    is refused whole, however well signed: its blocks are that block's ancestors (each links
    to the one before), so none of that history is committed, below the waypoint or through
    it. (A fork that leaves the waypoint's chain more than one batch below it is caught only
    at the waypoint: the node then refuses it and says so, but may have committed its prefix.)"""
    tree = BlockTree(head)
    parent = head
    accepted: list[Block] = []
    certificates: list[QuorumCert] = []
    proofs = job.epoch_ends or (None,) * len(job.blocks)
    ended: Block | None = None
    for block, qc, proof in zip(job.blocks, job.qcs, proofs, strict=True):
        # Rule: a valid block on its own (our chain, the leader of its view, its body, its signature).
        if verifier.block(block) is not None:
            break
        # Rule: it extends the previous block (one height up, a later view, justify certifies it).
        if BlockTree.check_child(block, parent) is not None:
            break
        # Rule: its justify QC is a quorum of valid votes.
        if not verifier.qc(block.justify):
            break
        # Rule: nothing of a chain that conflicts with the trusted waypoint (the batch is linked:
        # every block before this one is its ancestor, so none is the waypoint's history).
        conflict = waypoint.conflict(block.height, block.id, block.header.epoch) if waypoint else None
        if conflict is not None:
            log.error("REFUSED history from peer %s: %s; none of it is committed", job.peer[-8:], conflict)
            return [], []
        tree.add(block)
        accepted.append(block)
        certificates.append(block.justify)
        # (Its height is signed by the votes: a QC claiming another height is no QC for it.)
        if qc is not None and qc.block_id == block.id and qc.height == block.height and verifier.qc(qc):
            certificates.append(qc)
        parent = block
        # Rule: the last block of the epoch is final when the epoch's own set proved it; what
        # follows is verified against the next set (the next batch).
        if proof is not None and proof.last.id == block.id:
            if epoch_end_problem(proof, verifier) is None:
                ended = block
                break
            log.warning("peer %s sent a false epoch proof for height %d", job.peer[-8:], block.height)
            break
    if ended is None and len(accepted) < len(job.blocks):
        log.warning("peer %s sent %d unverifiable blocks", job.peer[-8:], len(job.blocks) - len(accepted))
    # Rule: final means committed by the three-chain rule, the consensus core's own (or, for an
    # epoch's last block, by its hand-over proof, the same rule applied to the blocks above it).
    best: Block | None = ended
    for qc in certificates:
        _, commit = three_chain(tree, qc)
        if commit is not None and (best is None or commit.height > best.height):
            best = commit
    if best is None:
        return [], []
    final = tree.commit(best)
    # Each final block is certified by the justify of the block after it (there are two after the
    # last, or its epoch's proof: the first block of that chain certifies it).
    after = {b.parent_id: b.justify for b in accepted}
    if ended is not None and ended.id not in after:
        proof = next(p for p in proofs if p is not None and p.last.id == ended.id)
        after[ended.id] = proof.chain[0].justify
    return final, [after[b.id] for b in final]


class Syncer:
    """Asks peers for committed blocks (into ``inbox``) and serves its own from ``chain``."""

    def __init__(
        self,
        *,
        network: Network,
        view: ValidatorView,
        inbox: Inbox,
        chain: CommittedChain,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.network = network
        self.view = view
        self.inbox = inbox
        self.chain = chain
        self.progress = sys.stderr.isatty()
        # The highest committed height a peer reported in the last survey (None: none answered
        # yet); /status derives its ``syncing`` flag from it.
        self.best_peer_height: int | None = None

    def epoch(self) -> int:
        return queries.validator_set(self.chain).version

    def register(self) -> None:
        self.network.set_stream_handler("sync", self._serve)

    async def run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except Exception:
                log.exception("sync round failed")
            await trio.sleep(SYNC_INTERVAL)

    async def _heights(self) -> dict[str, tuple[int, int]]:
        """Each answering peer's committed (height, epoch)."""
        heights: dict[str, tuple[int, int]] = {}

        async def ask(peer: str) -> None:
            try:
                raw = await self.network.request(peer, "height", b"?", 2.0)
                if len(raw) in (8, 16):
                    epoch = int.from_bytes(raw[8:], "big") if len(raw) == 16 else 0
                    heights[peer] = (int.from_bytes(raw[:8], "big"), epoch)
            except NetError:
                pass

        async with trio.open_nursery() as nursery:
            for peer in self.network.connected_peers():
                if self.view.account_of(peer) is not None or peer in self.view.known_peers():
                    nursery.start_soon(ask, peer)
        return heights

    async def catch_up(self) -> None:
        heights = await self._heights()
        if not heights:
            return
        peer, (best, best_epoch) = max(heights.items(), key=lambda kv: kv[1])
        self.best_peer_height = best
        ours = self.chain.last_height() or 0
        if not behind(ours, self.epoch(), best, best_epoch):
            return
        log.info("behind by %d blocks: syncing from %s", best - ours, peer[-8:])
        start = ours + 1
        while start <= best:
            count = min(MAX_SYNC_BATCH, best - start + 1)
            blocks, qcs, ends = await self._fetch(peer, start, count)
            if not blocks:
                return
            done = trio.Event()
            self.inbox.submit_sync(SyncedBlocks(tuple(blocks), tuple(qcs), peer, tuple(ends)), done)
            await done.wait()
            now = self.chain.last_height() or 0
            if self.progress:
                print(
                    f"\rsync {now}/{best} ({100 * now // max(best, 1)}%)", end="", file=sys.stderr, flush=True
                )
            if now < start:
                return  # nothing provable in this batch: consensus closes the rest
            start = now + 1
        if self.progress:
            print(file=sys.stderr)

    async def _fetch(
        self, peer: str, start: int, count: int
    ) -> tuple[list[Block], list[QuorumCert | None], list[EpochEnd | None]]:
        blocks: list[Block] = []
        qcs: list[QuorumCert | None] = []
        ends: list[EpochEnd | None] = []
        self.metrics.sync_requests.inc()
        try:
            async with self.network.stream_request(
                peer, "sync", encode(SyncRequest(start, count)), timeout=30.0
            ) as frames:
                async for frame in frames:
                    item = decode(SyncItem, frame)
                    blocks.append(Block.decode(item.block))
                    qcs.append(decode(QuorumCert, item.qc) if item.qc else None)
                    ends.append(EpochEnd.decode(item.epoch_end) if item.epoch_end else None)
        except (NetError, DecodeError) as exc:
            log.info("sync from %s stopped: %s", peer[-8:], exc)
        return blocks, qcs, ends

    async def _serve(self, _peer: str, data: bytes) -> AsyncIterator[bytes]:
        request = decode(SyncRequest, data)
        store = self.chain
        last = store.last_height() or 0
        end = min(request.start + min(request.count, MAX_SYNC_BATCH), last + 1)
        for height in range(request.start, end):
            raw = store.block_bytes_at(height)
            if raw is None:
                break
            qc = store.qc_for(height)
            proof = store.epoch_end_at(height)
            yield encode(SyncItem(raw, encode(qc) if qc else b"", proof.encode() if proof else b""))
