"""Shared builders for consensus tests: keys, validator sets, genesis, a toy app, signed blocks.

Everything is deterministic (keys from fixed seeds), so a failure replays.
The consensus layer must not depend on the ledger, so neither do these: the
genesis block and the application are minimal stand-ins with the same shape.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from p2pcity.consensus import (
    Action,
    BlockFetched,
    Broadcast,
    BuildProposal,
    Commit,
    Config,
    Core,
    Event,
    FetchBlock,
    PersistSafety,
    ProposalBuilt,
    Send,
    SetTimer,
    Start,
    TimerFired,
    message_event,
)
from p2pcity.consensus.app import SignatureCheck
from p2pcity.crypto.hashing import EMPTY_ROOT, sha256, tagged_hash
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.types.block import Block, BlockHeader, QuorumCert, VoteSignature, tx_root, vote_message
from p2pcity.types.block_time import proposal_time
from p2pcity.types.consensus import (
    SafetyState,
    Timeout,
    TimeoutCert,
    TimeoutSignature,
    Vote,
    timeout_message,
)
from p2pcity.types.tx import RecordPut, Transaction

CHAIN = "sim-city"
ZERO = bytes(32)


@functools.cache
def keys(n: int, seed: int = 0) -> tuple[SigningKey, ...]:
    """n deterministic validator keys, sorted by public key (so index == leader slot)."""
    made = [SigningKey.from_seed(tagged_hash(b"sim-key", bytes([seed]), bytes([i]))) for i in range(n)]
    return tuple(sorted(made, key=lambda k: k.public_key))


def publics(signers: Sequence[SigningKey]) -> list[bytes]:
    return [k.public_key for k in signers]


@functools.cache
def genesis(chain_id: str = CHAIN) -> Block:
    header = BlockHeader(
        chain_id=chain_id,
        epoch=0,
        height=0,
        view=0,
        parent_id=ZERO,
        justify=QuorumCert.genesis(ZERO),
        proposer=ZERO,
        timestamp_ms=0,
        tx_root=EMPTY_ROOT,
        tx_count=0,
        state_root=sha256(b"sim-genesis-state"),
    )
    return Block(header, (), bytes(64))


def genesis_qc(chain_id: str = CHAIN) -> QuorumCert:
    return QuorumCert.genesis(genesis(chain_id).id)


@functools.cache
def tx_pool(size: int = 256, chain_id: str = CHAIN) -> tuple[Transaction, ...]:
    """Signed transactions to batch into blocks (made once per process: signing is not free)."""
    sender = SigningKey.from_seed(sha256(b"sim-sender"))
    return tuple(
        Transaction.create(
            sender, chain_id, i, RecordPut(f"sim/{i}", 1, sha256(i.to_bytes(4, "big")), 1, "x", "")
        )
        for i in range(size)
    )


def next_state_root(parent: Block, txs_root: bytes) -> bytes:
    """The toy state machine: the state is a hash chain of the transaction roots."""
    return tagged_hash(b"sim-state", parent.header.state_root, txs_root)


class SimApp:
    """A deterministic application: batches pool transactions, 'executes' by hash chaining."""

    def __init__(self, batch: int = 8, pool: Sequence[Transaction] | None = None) -> None:
        self.batch = batch
        self.pool = tuple(pool) if pool is not None else tx_pool()
        self.rejected = 0

    def verify_block(self, block: Block, parent: Block) -> bool:
        ok = block.header.state_root == next_state_root(parent, block.header.tx_root)
        self.rejected += not ok
        return ok

    def build(
        self, request: BuildProposal, parent: Block, proposer: bytes, now_ms: int
    ) -> ProposalBuilt:
        start = (request.height * self.batch) % max(1, len(self.pool))
        txs = tuple(self.pool[(start + i) % len(self.pool)] for i in range(self.batch))
        root = tx_root(txs)
        header = BlockHeader(
            chain_id=parent.header.chain_id,
            epoch=parent.header.epoch,
            height=request.height,
            view=request.view,
            parent_id=request.parent_id,
            justify=request.justify,
            proposer=proposer,
            timestamp_ms=proposal_time(parent.header, request.justify, now_ms),
            tx_root=root,
            tx_count=len(txs),
            state_root=next_state_root(parent, root),
        )
        return ProposalBuilt(header, txs)


@functools.cache
def _cached_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return verify(public_key, message, signature)


def shared_verify_cache() -> SignatureCheck:
    """Real Ed25519, each distinct (key, message, signature) checked once per process.

    Sound for a simulator (the answer is a pure function of the triple) and it
    makes thousands of runs affordable; the benchmark measures the uncached cost.
    """
    return _cached_verify


def make_core(
    key: SigningKey,
    validators: Sequence[bytes],
    *,
    app: SimApp | None = None,
    config: Config | None = None,
    core_class: type[Core] = Core,
    check: SignatureCheck | None = None,
    **kwargs: object,
) -> Core:
    return core_class(
        key=key,
        genesis=genesis(),
        validators=validators,
        app=app or SimApp(),
        config=config or Config(base_timeout_ms=100, max_backoff_exponent=5),
        check=check or shared_verify_cache(),
        **kwargs,  # type: ignore[arg-type]
    )


# --- hand-built chains for unit tests -----------------------------------------


def qc_for(
    block: Block,
    signers: Sequence[SigningKey],
    chain_id: str = CHAIN,
    timestamp_ms: int | None = None,
) -> QuorumCert:
    """A QC for ``block`` signed by ``signers``, each voting at ``timestamp_ms`` (default: the
    block's own time, as honest voters whose clocks lag it would)."""
    h = block.header
    if block.height == 0:
        return QuorumCert.genesis(block.id)
    ts = h.timestamp_ms if timestamp_ms is None else timestamp_ms
    message = vote_message(chain_id, h.epoch, block.view, block.height, block.id, ts)
    votes = tuple(
        sorted(
            (VoteSignature(k.public_key, ts, k.sign(message)) for k in signers),
            key=lambda v: v.signer,
        )
    )
    return QuorumCert(h.epoch, block.view, block.id, block.height, votes)


def make_block(
    parent: Block,
    view: int,
    signers: Sequence[SigningKey],
    *,
    proposer: SigningKey | None = None,
    justify: QuorumCert | None = None,
    txs: tuple[Transaction, ...] = (),
    chain_id: str = CHAIN,
    timestamp_ms: int | None = None,
) -> Block:
    """A signed block on ``parent`` in ``view`` by the round-robin leader, justified by a quorum.

    Its time is ``timestamp_ms`` or, by default, the view (so any clock reading near 0 is
    within the drift).
    """
    all_keys = sorted(signers, key=lambda k: k.public_key)
    leader = proposer or all_keys[view % len(all_keys)]
    quorum = all_keys[: len(all_keys) - (len(all_keys) - 1) // 3]
    root = tx_root(txs)
    header = BlockHeader(
        chain_id=chain_id,
        epoch=0,
        height=parent.height + 1,
        view=view,
        parent_id=parent.id,
        justify=justify or qc_for(parent, quorum, chain_id),
        proposer=leader.public_key,
        timestamp_ms=view if timestamp_ms is None else timestamp_ms,
        tx_root=root,
        tx_count=len(txs),
        state_root=next_state_root(parent, root),
    )
    return Block.create(leader, header, txs)


def make_chain(views: Sequence[int], signers: Sequence[SigningKey]) -> list[Block]:
    """Genesis followed by one block per view, each on the previous one."""
    chain = [genesis()]
    for view in views:
        chain.append(make_block(chain[-1], view, signers))
    return chain


def vote(key: SigningKey, block: Block, chain_id: str = CHAIN) -> Vote:
    return Vote.create(key, chain_id, block, block.header.timestamp_ms)


def timeout(key: SigningKey, view: int, high_qc: QuorumCert, chain_id: str = CHAIN) -> Timeout:
    return Timeout.create(key, chain_id, 0, view, high_qc)


def tc_for(
    view: int, signers: Sequence[SigningKey], high_qc: QuorumCert, chain_id: str = CHAIN
) -> TimeoutCert:
    signatures = tuple(
        sorted(
            (
                TimeoutSignature(
                    k.public_key,
                    high_qc.view,
                    k.sign(timeout_message(chain_id, 0, view, high_qc.view)),
                )
                for k in signers
            ),
            key=lambda s: s.signer,
        )
    )
    return TimeoutCert(0, view, high_qc, signatures)


def rebuild(block: Block, signer: SigningKey, **header_changes: object) -> Block:
    """The block with some header fields changed, re-signed (to forge or equivocate)."""
    header = replace(block.header, **header_changes)  # type: ignore[arg-type]
    return Block.create(signer, header, block.txs)


# --- cores wired together in-process -------------------------------------------


class LocalNet:
    """n cores passing messages in-process, FIFO and at once; timers fire only when asked.

    Every action list is kept (``lists[key]``) so tests can check orderings. All cores
    share one clock, ``now_ms``: a millisecond passes per event handled (so block times,
    which follow the clock, stay within the drift of it however long a test runs).
    """

    def __init__(self, n: int, *, app: SimApp | None = None, config: Config | None = None) -> None:
        self.keys = keys(n)
        self.validators = publics(self.keys)
        self.app = app or SimApp()
        self.cores: dict[bytes, Core] = {
            k.public_key: make_core(k, self.validators, app=self.app, config=config)
            for k in self.keys
        }
        self.queue: deque[tuple[bytes, Event]] = deque()
        self.lists: dict[bytes, list[list[Action]]] = {k: [] for k in self.cores}
        self.disk: dict[bytes, SafetyState] = {}
        self.committed: dict[bytes, list[Block]] = {k: [] for k in self.cores}
        self.timers: dict[bytes, SetTimer] = {}
        self.down: set[bytes] = set()  # cores that neither receive nor send
        self.now_ms = 0

    def start(self) -> None:
        for key in self.cores:
            self.handle(key, Start())

    def handle(self, key: bytes, event: Event) -> list[Action]:
        self.now_ms += 1
        actions = self.cores[key].handle(event)
        self.lists[key].append(actions)
        for action in actions:
            self.execute(key, action)
        return actions

    def execute(self, key: bytes, action: Action) -> None:
        if isinstance(action, Broadcast):
            for other in self.cores:
                if other != key:
                    self.queue.append((other, message_event(action.message, key, now_ms=self.now_ms)))
        elif isinstance(action, Send):
            self.queue.append((action.to, message_event(action.message, key, now_ms=self.now_ms)))
        elif isinstance(action, PersistSafety):
            self.disk[key] = action.state
        elif isinstance(action, Commit):
            self.committed[key].extend(action.blocks)
        elif isinstance(action, SetTimer):
            self.timers[key] = action
        elif isinstance(action, BuildProposal):
            parent = self.cores[key].block(action.parent_id)
            assert parent is not None
            self.queue.append((key, self.app.build(action, parent, key, self.now_ms)))
        elif isinstance(action, FetchBlock):
            for other, core in self.cores.items():
                found = core.block(action.block_id) if other != key else None
                found = found or next(
                    (b for b in self.committed[other] if b.id == action.block_id), None
                )
                if found is not None:
                    self.queue.append((key, BlockFetched(found, now_ms=self.now_ms)))
                    break

    def run(self, steps: int = 10_000) -> int:
        done = 0
        while self.queue and done < steps:
            key, event = self.queue.popleft()
            if key not in self.down:
                self.handle(key, event)
            done += 1
        return done

    def fire_timers(self) -> None:
        for key, timer in list(self.timers.items()):
            if key not in self.down:
                self.handle(key, TimerFired(timer.view))

    def heights(self) -> list[int]:
        return [core.committed.height for core in self.cores.values()]
