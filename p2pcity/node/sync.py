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
# While surveys find nothing new (the same answers, our height unchanged, not behind), the
# next waits twice as long, up to this: an idle chain asked every peer's height every 2 s, on
# a new stream each, about half of an idle node's CPU (py-spy, issue 16). Anything new, or a
# wake from consensus, returns to SYNC_INTERVAL.
SYNC_QUIET_INTERVAL = 16.0
# A peer loaded with the chain's traffic answers its height late: a survey waits this long.
HEIGHT_TIMEOUT = 5.0
SYNC_OPEN_TIMEOUT = 15.0  # to open a range request; each block of the reply has the io timeout
SYNC_RESPONSE_BYTES = 4 * 1024 * 1024  # a range reply stops after this many bytes of blocks
SYNC_CARRY_BYTES = 32 * 1024 * 1024  # blocks held while not yet provably final, at most
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


def next_survey_interval(current: float, quiet: bool) -> float:
    """Seconds until the next height survey: doubling while surveys are quiet, else the base."""
    return min(current * 2, SYNC_QUIET_INTERVAL) if quiet else SYNC_INTERVAL


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
    below = 0  # blocks at or under our head: committed by consensus while the batch was on its way
    for block, qc, proof in zip(job.blocks, job.qcs, proofs, strict=True):
        # Rule: what we hold committed already is skipped, not held against the batch; the first
        # block above the head must extend it, so a block of another chain down there commits nothing.
        if not accepted and block.height <= head.height:
            below += 1
            continue
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
    if ended is None and below + len(accepted) < len(job.blocks):
        unverifiable = len(job.blocks) - below - len(accepted)
        log.warning("peer %s sent %d unverifiable blocks", job.peer[-8:], unverifiable)
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


class _Batch:
    """One range of committed blocks being fetched (while the one before it is committed)."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.done = trio.Event()
        self.blocks: list[Block] = []
        self.qcs: list[QuorumCert | None] = []
        self.ends: list[EpochEnd | None] = []
        self.peer = ""


class Syncer:
    """Asks peers for committed blocks (into ``inbox``) and serves its own from ``chain``.

    A catch-up asks for ranges of blocks (at most :data:`MAX_SYNC_BATCH`, and at
    most :data:`SYNC_RESPONSE_BYTES` a response), in turn from every peer that
    is far enough ahead, one range ahead of the one being committed; a peer
    that fails or times out is skipped for the rest of the round. It starts
    every :data:`SYNC_INTERVAL`, or at once when the core declines to fetch
    parents far above the committed head (:meth:`wake`).
    """

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
        self._woken = trio.Event()
        # Who answered what, and our height: a survey equal to the last one (none ahead) is quiet.
        self._last_survey: tuple[frozenset[tuple[str, tuple[int, int]]], int] | None = None
        self.quiet = False  # the last survey found nothing new

    def epoch(self) -> int:
        return queries.validator_set(self.chain).version

    def register(self) -> None:
        self.network.set_stream_handler("sync", self._serve)

    def wake(self, height: int) -> None:
        """The core saw blocks up to ``height``, too far ahead to fetch by id: sync now."""
        self._woken.set()

    async def run(self) -> None:
        interval = SYNC_INTERVAL
        while True:
            try:
                await self.catch_up()
            except Exception:
                log.exception("sync round failed")
                self.quiet = False
            interval = next_survey_interval(interval, self.quiet)
            with trio.move_on_after(interval):
                await self._woken.wait()
            if self._woken.is_set():
                interval = SYNC_INTERVAL
            self._woken = trio.Event()

    async def _heights(self) -> dict[str, tuple[int, int]]:
        """Each answering peer's committed (height, epoch)."""
        heights: dict[str, tuple[int, int]] = {}
        ours = self.epoch()

        async def ask(peer: str) -> None:
            try:
                raw = await self.network.request(peer, "height", b"?", HEIGHT_TIMEOUT)
                if len(raw) in (8, 16):
                    epoch = int.from_bytes(raw[8:], "big") if len(raw) == 16 else 0
                    heights[peer] = (int.from_bytes(raw[:8], "big"), epoch)
                    if epoch > ours:
                        # A peer in a later epoch: we are behind whatever the rest answer, and
                        # the new epoch waits for us; sync now, not after the slowest answer.
                        nursery.cancel_scope.cancel()
            except NetError as exc:
                log.debug("no height from %s: %s", peer[-8:], exc)

        async with trio.open_nursery() as nursery:
            for peer in self.network.connected_peers():
                if self.view.account_of(peer) is not None or peer in self.view.known_peers():
                    nursery.start_soon(ask, peer)
        return heights

    async def catch_up(self) -> None:
        heights = await self._heights()
        ours = self.chain.last_height() or 0
        survey = (frozenset(heights.items()), ours)
        repeated, self._last_survey = survey == self._last_survey, survey
        self.quiet = False  # nobody answered, or we are behind: keep asking at the base interval
        if not heights:
            return
        best, best_epoch = max(heights.values())
        self.best_peer_height = best
        if not behind(ours, self.epoch(), best, best_epoch):
            # The same answers as last time, and not behind: asking sooner cannot tell us more.
            # (Not "none ahead": an idle chain may rest with one node a block or two up, the
            # one that formed the last commit QC, and the others would survey every 2 s.)
            self.quiet = repeated
            return
        log.info("behind by %d blocks: syncing from %d peers", best - ours, len(heights))
        # The peers to ask, furthest first: each range goes to the next one in turn.
        peers = [p for p, _ in sorted(heights.items(), key=lambda kv: kv[1], reverse=True)]
        tops = {p: h for p, (h, _) in heights.items()}
        async with trio.open_nursery() as nursery:
            await self._pipeline(nursery, peers, tops, ours + 1, best)
            nursery.cancel_scope.cancel()
        if self.progress:
            print(file=sys.stderr)

    async def _pipeline(
        self, nursery: trio.Nursery, peers: list[str], tops: dict[str, int], start: int, best: int
    ) -> None:
        """Fetch range after range, the next while the last is committed, until ``best``."""
        failed: set[str] = set()
        turn = 0
        reach = best  # the survey's best, moved up while the chain grows under us (below)

        def launch(first: int) -> _Batch | None:
            nonlocal turn
            if first > reach:
                return None
            batch = _Batch(first)
            nursery.start_soon(self._fetch_batch, batch, peers, tops, failed, turn)
            turn += 1
            return batch

        batch = launch(start)
        # The blocks of the last batch not yet provably final (its top two, or those after an
        # epoch's end): they go again, in front of the next batch, which proves them.
        carried: tuple[list[Block], list[QuorumCert | None], list[EpochEnd | None]] = ([], [], [])
        while batch is not None:
            await batch.done.wait()
            if not batch.blocks:
                return  # no peer could serve it: the next round (or consensus) closes the rest
            top = batch.start + len(batch.blocks) - 1
            if top >= reach and len(batch.blocks) >= SYNC_THRESHOLD:
                # The chain grew while we synced: go on with the peer that served this batch
                # (it serves up to its own head) until it has fewer new blocks than consensus
                # closes by itself. Stopping at the survey's best, a new validator at load 13
                # was 20-40 blocks behind again by the next round (a survey waits for its
                # slowest peer), round after round, and never voted.
                reach = top + MAX_SYNC_BATCH
                tops[batch.peer] = max(tops[batch.peer], reach)
            following = launch(batch.start + len(batch.blocks))
            blocks, qcs, ends = (carried[0] + batch.blocks, carried[1] + batch.qcs, carried[2] + batch.ends)
            done = trio.Event()
            job = SyncedBlocks(tuple(blocks), tuple(qcs), batch.peer, tuple(ends))
            self.inbox.submit_sync(job, done)
            await done.wait()
            now = self.chain.last_height() or 0
            if self.progress:
                print(
                    f"\rsync {now}/{best} ({100 * now // max(best, 1)}%)", end="", file=sys.stderr, flush=True
                )
            if now < blocks[0].height:
                # Nothing provable yet: a short reply (big blocks, a few a reply) needs the next
                # batch's blocks above it. Carried along, within a bound (a peer that sends
                # blocks that never prove final costs us that much, no more).
                if following is None or sum(len(b.encoded) for b in blocks) > SYNC_CARRY_BYTES:
                    return  # consensus (or the next round, from other peers) closes the rest
                carried = (blocks, qcs, ends)
                batch = following
                continue
            if following is None:
                break  # at the survey's best: the last two come with the next round, or by id
            left = [i for i, b in enumerate(blocks) if b.height > now]
            carried = ([blocks[i] for i in left], [qcs[i] for i in left], [ends[i] for i in left])
            if (blocks[left[0]].height if left else following.start) != now + 1:
                # Consensus committed some meanwhile: ask again from where the chain now stands.
                carried = ([], [], [])
                following = launch(now + 1)
            batch = following

    async def _fetch_batch(
        self, batch: _Batch, peers: list[str], tops: dict[str, int], failed: set[str], turn: int
    ) -> None:
        """Fill ``batch`` from the first peer, in turn, that serves some of it."""
        try:
            able = [p for p in peers if tops[p] >= batch.start and p not in failed]
            for k in range(len(able)):
                peer = able[(turn + k) % len(able)]
                count = min(MAX_SYNC_BATCH, tops[peer] - batch.start + 1)
                blocks, qcs, ends = await self._fetch(peer, batch.start, count)
                if blocks:
                    batch.blocks, batch.qcs, batch.ends, batch.peer = blocks, qcs, ends, peer
                    return
                failed.add(peer)
        finally:
            batch.done.set()

    async def _fetch(
        self, peer: str, start: int, count: int
    ) -> tuple[list[Block], list[QuorumCert | None], list[EpochEnd | None]]:
        blocks: list[Block] = []
        qcs: list[QuorumCert | None] = []
        ends: list[EpochEnd | None] = []
        self.metrics.sync_requests.inc()
        try:
            async with self.network.stream_request(
                peer, "sync", encode(SyncRequest(start, count)), timeout=SYNC_OPEN_TIMEOUT
            ) as frames:
                async for frame in frames:
                    item = decode(SyncItem, frame)
                    blocks.append(Block.decode(item.block))
                    qcs.append(decode(QuorumCert, item.qc) if item.qc else None)
                    ends.append(EpochEnd.decode(item.epoch_end) if item.epoch_end else None)
        except (NetError, DecodeError) as exc:
            log.info("sync from %s stopped after %d blocks: %s", peer[-8:], len(blocks), exc)
        return blocks, qcs, ends

    async def _serve(self, _peer: str, data: bytes) -> AsyncIterator[bytes]:
        request = decode(SyncRequest, data)
        store = self.chain
        last = store.last_height() or 0
        end = min(request.start + min(request.count, MAX_SYNC_BATCH), last + 1)
        sent = 0
        for height in range(request.start, end):
            raw = store.block_bytes_at(height)
            # A response of a few MiB at most (at least one block): big blocks come a few at a time.
            if raw is None or (sent and sent + len(raw) > SYNC_RESPONSE_BYTES):
                break
            qc = store.qc_for(height)
            proof = store.epoch_end_at(height)
            sent += len(raw)
            yield encode(SyncItem(raw, encode(qc) if qc else b"", proof.encode() if proof else b""))
