"""The price of persist-before-sign with certified blocks: one synced safety-record write per vote.

    python bench/bench_safety.py [--votes 200] [--txs 0,100,1000]

Each vote writes the safety record and the block voted for in one synced
RocksDB batch (``Store.save_safety(state, certified=[block])``): the block is
then on disk before the vote leaves, which is what lets a full-cluster restart
resume. The baseline, measured in the same run on the same disk, is the record
alone (what the node wrote before, and what loses the block on a power cut).
Blocks carry ``--txs`` record transactions (~250 bytes each).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2pcity.store import Store
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import SafetyState
from tests.store.builders import CHAIN_ID, child, genesis, make_tx


def chain(votes: int, txs: int) -> list[Block]:
    blocks, parent = [], genesis()
    for h in range(1, votes + 1):
        parent = child(parent, tuple(make_tx(h * 100_000 + i) for i in range(txs)))
        blocks.append(parent)
    return blocks


def votes_per_second(path: Path, blocks: list[Block], with_blocks: bool) -> float:
    with Store.open(path, chain_id=CHAIN_ID) as store:
        start = time.perf_counter()
        for block in blocks:
            qc = QuorumCert(0, block.view - 1, block.parent_id, block.height - 1, ())
            state = SafetyState(block.view, 0, qc, qc)
            store.save_safety(state, [block] if with_blocks else ())
        return len(blocks) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=200)
    parser.add_argument("--txs", default="0,100,1000")
    args = parser.parse_args()
    print(f"{'txs/block':>10} {'block KB':>9} {'record only/s':>14} {'with block/s':>13} {'ratio':>6}")
    for txs in (int(t) for t in args.txs.split(",")):
        blocks = chain(args.votes, txs)
        with tempfile.TemporaryDirectory() as tmp:
            base = votes_per_second(Path(tmp) / "a", blocks, with_blocks=False)
            full = votes_per_second(Path(tmp) / "b", blocks, with_blocks=True)
        size = len(blocks[0].encoded) / 1024
        print(f"{txs:>10} {size:>9.1f} {base:>14.0f} {full:>13.0f} {full / base:>6.2f}")


if __name__ == "__main__":
    main()
