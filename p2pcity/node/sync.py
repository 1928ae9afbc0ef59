"""Catching up: a node that was down, or a new observer, fetches committed blocks from peers.

The syncer only asks and collects; the consensus driver (the one writer)
verifies and commits. A block is committed only with proof that it is final:
every block's ``justify`` QC is checked against the validator set, blocks link
by parent id, and the last committed one is the head of a three-chain (two
children in consecutive views, the second certified by a valid QC). The
ancestors of a final block are final.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from p2pcity.codec import DecodeError, decode, encode
from p2pcity.net import NetError
from p2pcity.node.wire import MAX_SYNC_BATCH, SyncItem, SyncRequest
from p2pcity.types.block import Block, QuorumCert

if TYPE_CHECKING:
    from p2pcity.node.service import Node

log = logging.getLogger(__name__)
SYNC_INTERVAL = 2.0
# Gaps this small are closed by consensus itself (fetching ancestors of a proposal).
SYNC_THRESHOLD = 3


@dataclass(frozen=True, slots=True)
class SyncedBlocks:
    """Blocks received from a peer, in height order, for the driver to verify and commit."""

    blocks: tuple[Block, ...]
    qcs: tuple[QuorumCert | None, ...]
    peer: str


def verify_synced(
    head: Block, job: SyncedBlocks, chain_id: str, validators: tuple[bytes, ...], genesis_id: bytes
) -> tuple[list[Block], list[QuorumCert | None]]:
    """The longest prefix of ``job`` that links to ``head`` with valid signatures and QCs."""
    blocks: list[Block] = []
    qcs: list[QuorumCert | None] = []
    parent = head
    for block, qc in zip(job.blocks, job.qcs, strict=True):
        h = block.header
        # Rule: each block extends the previous one, by one height, on this chain.
        if h.chain_id != chain_id or h.parent_id != parent.id or h.height != parent.height + 1:
            break
        # Rule: proposed and signed by a validator, with the transactions its header names.
        if h.proposer not in validators or not block.signature_ok() or not block.body_matches_header():
            break
        # Rule: its justify QC certifies its parent with a quorum of valid votes.
        if h.justify.block_id != parent.id or not h.justify.verify(chain_id, validators, genesis_id):
            break
        ok_qc = (
            qc
            if qc is not None and qc.block_id == block.id and qc.verify(chain_id, validators, genesis_id)
            else None
        )
        blocks.append(block)
        qcs.append(ok_qc)
        parent = block
    return blocks, qcs


def final_prefix(blocks: list[Block], qcs: list[QuorumCert | None]) -> int:
    """How many leading blocks are proven final by a three-chain inside the batch.

    Links and signatures are checked by the caller; this only finds the
    highest block ``b`` with children ``b'``, ``b''`` in views ``v+1``, ``v+2``
    and a QC for ``b''`` (its own, or the justify of the block after it).
    """
    best = 0
    for i in range(len(blocks) - 2):
        b, c, d = blocks[i], blocks[i + 1], blocks[i + 2]
        if c.view != b.view + 1 or d.view != c.view + 1:
            continue
        certified = qcs[i + 2] is not None or (i + 3 < len(blocks) and blocks[i + 3].justify.block_id == d.id)
        if certified:
            best = i + 1
    return best


class Syncer:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.progress = sys.stderr.isatty()

    def register(self) -> None:
        self.node.network.set_stream_handler("sync", self._serve)

    async def run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except Exception:
                log.exception("sync round failed")
            await trio.sleep(SYNC_INTERVAL)

    async def _heights(self) -> dict[str, int]:
        node = self.node
        heights: dict[str, int] = {}

        async def ask(peer: str) -> None:
            try:
                raw = await node.network.request(peer, "height", b"?", 2.0)
                if len(raw) == 8:
                    heights[peer] = int.from_bytes(raw, "big")
            except NetError:
                pass

        async with trio.open_nursery() as nursery:
            for peer in node.network.connected_peers():
                if node.account_of(peer) is not None or peer in node.known_peers():
                    nursery.start_soon(ask, peer)
        return heights

    async def catch_up(self) -> None:
        node = self.node
        heights = await self._heights()
        if not heights:
            return
        peer, best = max(heights.items(), key=lambda kv: kv[1])
        ours = node.store.last_height() or 0
        if best < ours + SYNC_THRESHOLD:
            return
        log.info("behind by %d blocks: syncing from %s", best - ours, peer[-8:])
        start = ours + 1
        while start <= best:
            count = min(MAX_SYNC_BATCH, best - start + 1)
            blocks, qcs = await self._fetch(peer, start, count)
            if not blocks:
                return
            done = trio.Event()
            node.driver.submit_sync(SyncedBlocks(tuple(blocks), tuple(qcs), peer), done)
            await done.wait()
            now = node.store.last_height() or 0
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
            async with self.node.network.stream_request(
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
        store = self.node.store
        last = store.last_height() or 0
        end = min(request.start + min(request.count, MAX_SYNC_BATCH), last + 1)
        for height in range(request.start, end):
            raw = store.block_bytes_at(height)
            if raw is None:
                break
            qc = store.qc_for(height)
            yield encode(SyncItem(raw, encode(qc) if qc else b""))
