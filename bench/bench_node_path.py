"""One validator's CPU per transaction, stage by stage, without the network: the in-process floor.

Replays what a validator that is not the leader does for each block, with
the node's own parts (``Mempool``, ``Ledger``, a RocksDB ``Store`` with its
fsyncs): a gossip batch of the block's transactions arrives (decoded,
each signature checked once, added to the mempool), then the compact
proposal (decoded, rebuilt from the mempool), the block is verified by
re-executing it (ledger rules, state tree) and committed. CPU seconds per
stage per transaction, and as a multiple of one Ed25519 verify measured in
the same run; the sum is what a node spends per transaction before any
networking, event loop or HTTP cost (``bench_scale.py`` measures those in
real processes). ``--reference-codec`` replays with the reference codec
(``P2PCITY_CODEC=reference``) in a child process, for the same-run ratio.

    python bench/bench_node_path.py [--txs 4000] [--block-size 500] [--reference-codec]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench_ledger import CHAIN, build_chain, make_txs

from p2pcity.chain.executor import account_nonce
from p2pcity.crypto.keys import verify
from p2pcity.mempool import Batch, Mempool
from p2pcity.node.ledger import Ledger
from p2pcity.node.wire import CompactProposal, decode_gossip, encode_gossip, rebuild
from p2pcity.store import Store
from p2pcity.types.consensus import Proposal
from p2pcity.types.tx import Transaction

STAGES = ("batch decode", "check + mempool add", "proposal rebuild", "verify block (execute)", "commit")


def verify_us(tx: Transaction, count: int = 2000) -> float:
    message = Transaction.signing_bytes(CHAIN, tx.sender, tx.nonce, tx.kind, tx.body)
    start = time.process_time()
    for _ in range(count):
        verify(tx.sender, message, tx.signature)
    return (time.process_time() - start) / count * 1e6


def replay(txs: int, block_size: int) -> tuple[dict[str, float], float]:
    """CPU microseconds per transaction of each stage, and of one verify."""
    genesis, blocks = build_chain(make_txs(txs), block_size)
    wire = [(Batch.of(list(b.txs)).encode(), encode_gossip(Proposal(b, None))) for b in blocks]
    spent: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "db") as store:
        root = genesis.block()
        store.commit_block(root, None, genesis.state_writes(), root.header.state_root)
        mempool = Mempool(CHAIN, lambda account: account_nonce(store, account))
        ledger = Ledger(store, CHAIN, mempool)
        parent = root
        for batch_bytes, proposal_bytes in wire:
            t0 = time.process_time()
            arrived, bad = Batch.decode(batch_bytes).transactions()
            t1 = time.process_time()
            for tx in arrived:
                mempool.add(tx, local=False)
            t2 = time.process_time()
            compact = decode_gossip(proposal_bytes)
            assert isinstance(compact, CompactProposal) and not bad
            found = [mempool.get(h) for h in compact.tx_hashes]
            block = rebuild(compact, tuple(tx for tx in found if tx is not None)).block
            t3 = time.process_time()
            assert ledger.verify_block(block, parent)
            t4 = time.process_time()
            ledger.commit(block, None)
            t5 = time.process_time()
            for stage, (a, b) in zip(STAGES, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)], strict=True):
                spent[stage] += b - a
            parent = block
    count = sum(len(b.txs) for b in blocks)
    return {k: v / count * 1e6 for k, v in spent.items()}, verify_us(blocks[0].txs[0])


def show(label: str, per_tx: dict[str, float], unit: float) -> None:
    print(f"{label}: one verify {unit:.1f} us CPU")
    for stage in STAGES:
        print(f"  {stage:26} {per_tx[stage]:8.1f} us/tx  {per_tx[stage] / unit:6.2f} verifies")
    total = sum(per_tx.values())
    print(f"  {'all stages':26} {total:8.1f} us/tx  {total / unit:6.2f} verifies")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=4000)
    parser.add_argument("--block-size", type=int, default=500)
    parser.add_argument("--reference-codec", action="store_true", help="also replay with the reference codec")
    parser.add_argument("--quiet-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quiet_child:
        per_tx, unit = replay(args.txs, args.block_size)
        print(json.dumps([per_tx, unit]))
        return
    print(f"one validator's path, {args.txs} record.put in blocks of {args.block_size}, RocksDB with fsync")
    if args.reference_codec:
        env = {**os.environ, "P2PCITY_CODEC": "reference"}
        child = [sys.executable, __file__, "--txs", str(args.txs), "--block-size", str(args.block_size)]
        out = subprocess.run([*child, "--quiet-child"], env=env, capture_output=True, text=True, check=True)
        ref, ref_unit = json.loads(out.stdout.strip().splitlines()[-1])
        show("reference codec", ref, ref_unit)
    per_tx, unit = replay(args.txs, args.block_size)
    show("as the node runs", per_tx, unit)


if __name__ == "__main__":
    main()
