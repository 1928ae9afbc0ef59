"""Commits per second of the consensus core alone: no network, no disk, no clock.

n cores pass messages in-process (a FIFO queue, zero delay), with real
Ed25519 signing, on the happy path (no timeouts). Each configuration runs
twice: verifying every signature as a node must, and with verification
skipped, so the cost of the protocol logic is known apart from the crypto
(and both apart from I/O, which is not here at all).

    python bench/bench_consensus.py [--seconds 3] [--txs 100] [--sizes 4,7,16]

A "commit" is one block committed by one replica (replica 0's view of the
chain; every replica commits the same blocks). On a shared VM expect +-20 %
between invocations; compare rows of one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2pcity.consensus import (
    Action,
    Broadcast,
    BuildProposal,
    Commit,
    Config,
    Core,
    Event,
    ProposalBuilt,
    Send,
    Start,
    message_event,
)
from p2pcity.crypto.hashing import EMPTY_ROOT, sha256, tagged_hash
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.types.block import Block, BlockHeader, QuorumCert, tx_root
from p2pcity.types.block_time import proposal_time
from p2pcity.types.tx import RecordPut, Transaction

CHAIN = "bench-city"


class App:
    """Batches a fixed set of pre-signed transactions; 'executes' by hash chaining."""

    def __init__(self, txs: tuple[Transaction, ...]) -> None:
        self.txs = txs
        self.root = tx_root(txs)

    def verify_block(self, block: Block, parent: Block) -> bool:
        return block.header.state_root == tagged_hash(b"s", parent.header.state_root, block.header.tx_root)

    def build(self, request: BuildProposal, parent: Block, proposer: bytes) -> ProposalBuilt:
        header = BlockHeader(
            CHAIN, 0, request.height, request.view, request.parent_id, request.justify, proposer,
            proposal_time(parent.header, request.justify, now_ms()), self.root, len(self.txs),
            tagged_hash(b"s", parent.header.state_root, self.root),
        )
        return ProposalBuilt(header, self.txs)


def genesis() -> Block:
    header = BlockHeader(
        CHAIN, 0, 0, 0, bytes(32), QuorumCert.genesis(bytes(32)), bytes(32), 0, EMPTY_ROOT, 0,
        sha256(b"bench-genesis"),
    )
    return Block(header, (), bytes(64))


def now_ms() -> int:
    """The wall clock, read per message as a node's driver does (the block time rule needs it)."""
    return int(time.time() * 1000)


def _skip_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return True


def run(
    n: int, seconds: float, txs: tuple[Transaction, ...], check_signatures: bool
) -> tuple[int, float, int]:
    """(blocks committed by replica 0, wall seconds, events handled)."""
    keys = [SigningKey.from_seed(sha256(b"bench" + bytes([i]))) for i in range(n)]
    validators = [k.public_key for k in keys]
    app = App(txs)
    g = genesis()
    cores = {
        k.public_key: Core(
            key=k, genesis=g, validators=validators, app=app, config=Config(),
            check=verify if check_signatures else _skip_verify,
        )
        for k in keys
    }
    queue: deque[tuple[bytes, Event]] = deque((k, Start()) for k in cores)
    first = keys[0].public_key
    committed = events = 0

    def execute(me: bytes, action: Action) -> None:
        nonlocal committed
        if isinstance(action, Broadcast):
            for other in cores:
                if other != me:
                    queue.append((other, message_event(action.message, me, now_ms=now_ms())))
        elif isinstance(action, Send):
            queue.append((action.to, message_event(action.message, me, now_ms=now_ms())))
        elif isinstance(action, BuildProposal):
            parent = cores[me].block(action.parent_id)
            assert parent is not None
            queue.append((me, app.build(action, parent, me)))
        elif isinstance(action, Commit) and me == first:
            committed += len(action.blocks)
        # PersistSafety, SetTimer, ReportEvidence: no I/O here by design.

    start = time.perf_counter()
    deadline = start + seconds
    while queue:
        me, event = queue.popleft()
        for action in cores[me].handle(event):
            execute(me, action)
        events += 1
        if events % 64 == 0 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - start
    views = max(c.view for c in cores.values())
    assert committed >= views - 5, "the happy path should commit a block per view"
    return committed, elapsed, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per configuration")
    parser.add_argument("--txs", type=int, default=100, help="transactions per block")
    parser.add_argument("--sizes", default="4,7,16", help="validator counts")
    args = parser.parse_args()
    sender = SigningKey.from_seed(sha256(b"bench-sender"))
    txs = tuple(
        Transaction.create(sender, CHAIN, i, RecordPut(f"b/{i}", 1, sha256(bytes(4)), 1, "x", ""))
        for i in range(args.txs)
    )
    print(f"consensus core, in-process, real Ed25519, {args.txs} txs/block, {args.seconds}s each")
    print(f"{'n':>3} {'signatures':>11} {'commits/s':>10} {'txs/s':>9} {'events/s':>9} {'ms/commit':>9}")
    for n in (int(x) for x in args.sizes.split(",")):
        rates = {}
        for check in (True, False):
            commits, elapsed, events = run(n, args.seconds, txs, check)
            rate = commits / elapsed
            rates[check] = rate
            label = "verified" if check else "skipped"
            print(
                f"{n:>3} {label:>11} {rate:>10.1f} {rate * args.txs:>9.0f} "
                f"{events / elapsed:>9.0f} {1000 / rate:>9.2f}"
            )
        share = 1 - rates[True] / rates[False] if rates[False] else 0.0
        print(f"{n:>3} {'':>11} signature checks are {share:.0%} of the time per commit")


if __name__ == "__main__":
    main()
