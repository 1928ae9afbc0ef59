"""Catching up: a node that was down, or a new observer, fetches committed blocks from peers.

The syncer only asks and collects; the replica (the one writer) verifies and
commits. A block is committed only with proof that it is final, judged by the
consensus package's own rules, not a copy of them: each block passes the
consensus verifier (chain, leader of its view, body, signature), links to its
parent as the block tree requires, carries a valid justify QC, and the last
committed one is the head of a three-chain (``p2pcity.consensus.safety``).
The ancestors of a final block are final.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import trio

from p2pcity.codec import DecodeError, decode, encode
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.consensus.safety import three_chain
from p2pcity.consensus.verifier import Verifier
from p2pcity.net import NetError, Network
from p2pcity.node.ports import CommittedChain, Inbox, ValidatorView
from p2pcity.node.replica import SyncedBlocks
from p2pcity.node.wire import MAX_SYNC_BATCH, SyncItem, SyncRequest
from p2pcity.types.block import Block, QuorumCert

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


def final_synced(head: Block, job: SyncedBlocks, verifier: Verifier) -> tuple[list[Block], list[QuorumCert]]:
    """The blocks of ``job`` proven final on top of committed ``head``, each with the QC that certifies it."""
    tree = BlockTree(head)
    parent = head
    accepted: list[Block] = []
    certificates: list[QuorumCert] = []
    for block, qc in zip(job.blocks, job.qcs, strict=True):
        # Rule: a valid block on its own (our chain, the leader of its view, its body, its signature).
        if verifier.block(block) is not None:
            break
        # Rule: it extends the previous block (one height up, a later view, justify certifies it).
        if BlockTree.check_child(block, parent) is not None:
            break
        # Rule: its justify QC is a quorum of valid votes.
        if not verifier.qc(block.justify):
            break
        tree.add(block)
        accepted.append(block)
        certificates.append(block.justify)
        # (Its height is signed by the votes: a QC claiming another height is no QC for it.)
        if qc is not None and qc.block_id == block.id and qc.height == block.height and verifier.qc(qc):
            certificates.append(qc)
        parent = block
    if len(accepted) < len(job.blocks):
        log.warning("peer %s sent %d unverifiable blocks", job.peer[-8:], len(job.blocks) - len(accepted))
    # Rule: final means committed by the three-chain rule, the consensus core's own.
    best: Block | None = None
    for qc in certificates:
        _, commit = three_chain(tree, qc)
        if commit is not None and (best is None or commit.height > best.height):
            best = commit
    if best is None:
        return [], []
    final = tree.commit(best)
    # Each final block is certified by the justify of the block after it (there are two after the last).
    after = {b.parent_id: b.justify for b in accepted}
    return final, [after[b.id] for b in final]


class Syncer:
    """Asks peers for committed blocks (into ``inbox``) and serves its own from ``chain``."""

    def __init__(self, *, network: Network, view: ValidatorView, inbox: Inbox, chain: CommittedChain) -> None:
        self.network = network
        self.view = view
        self.inbox = inbox
        self.chain = chain
        self.progress = sys.stderr.isatty()
        # The highest committed height a peer reported in the last survey (None: none answered
        # yet); /status derives its ``syncing`` flag from it.
        self.best_peer_height: int | None = None

    def register(self) -> None:
        self.network.set_stream_handler("sync", self._serve)

    async def run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except Exception:
                log.exception("sync round failed")
            await trio.sleep(SYNC_INTERVAL)

    async def _heights(self) -> dict[str, int]:
        heights: dict[str, int] = {}

        async def ask(peer: str) -> None:
            try:
                raw = await self.network.request(peer, "height", b"?", 2.0)
                if len(raw) == 8:
                    heights[peer] = int.from_bytes(raw, "big")
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
        peer, best = max(heights.items(), key=lambda kv: kv[1])
        self.best_peer_height = best
        ours = self.chain.last_height() or 0
        if not is_syncing(ours, best):
            return
        log.info("behind by %d blocks: syncing from %s", best - ours, peer[-8:])
        start = ours + 1
        while start <= best:
            count = min(MAX_SYNC_BATCH, best - start + 1)
            blocks, qcs = await self._fetch(peer, start, count)
            if not blocks:
                return
            done = trio.Event()
            self.inbox.submit_sync(SyncedBlocks(tuple(blocks), tuple(qcs), peer), done)
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

    async def _fetch(self, peer: str, start: int, count: int) -> tuple[list[Block], list[QuorumCert | None]]:
        blocks: list[Block] = []
        qcs: list[QuorumCert | None] = []
        try:
            async with self.network.stream_request(
                peer, "sync", encode(SyncRequest(start, count)), timeout=30.0
            ) as frames:
                async for frame in frames:
                    item = decode(SyncItem, frame)
                    blocks.append(Block.decode(item.block))
                    qcs.append(decode(QuorumCert, item.qc) if item.qc else None)
        except (NetError, DecodeError) as exc:
            log.info("sync from %s stopped: %s", peer[-8:], exc)
        return blocks, qcs

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
            yield encode(SyncItem(raw, encode(qc) if qc else b""))
