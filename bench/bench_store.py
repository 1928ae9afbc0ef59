"""Store throughput: block commits, state and block reads, blob writes and reads.

    python bench/bench_store.py [--blocks 300] [--txs 100] [--writes 50] [--blob-mib 256]

Blocks are real (signed transactions and proposer signature), built before
timing starts; each commit carries ``--writes`` state writes of ~100 bytes.
Blob figures include SHA-256 hashing and, for writes, the final fsync; reads
come from the page cache right after writing, so they measure the store's
overhead rather than the disk.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2pcity.store import CHUNK_SIZE, Store
from p2pcity.types.block import Block, QuorumCert
from tests.store.builders import CHAIN_ID, certify, child, genesis, make_tx

Commit = tuple[Block, QuorumCert, dict[bytes, bytes | None]]


def build(n_blocks: int, txs: int, writes: int) -> list[Commit]:
    out: list[Commit] = []
    parent = genesis()
    for h in range(1, n_blocks + 1):
        block = child(parent, tuple(make_tx(h * 10_000 + i) for i in range(txs)))
        state: dict[bytes, bytes | None] = {
            b"r/%08d/%04d" % (h, i): os.urandom(100) for i in range(writes)
        }
        out.append((block, certify(block), state))
        parent = block
    return out


def bench_commits(path: Path, blocks: list[Commit], sync: bool) -> float:
    with Store.open(path, chain_id=CHAIN_ID, sync_commits=sync) as store:
        store.commit_block(genesis(), None, {}, b"\x00" * 32)
        start = time.perf_counter()
        for block, qc, writes in blocks:
            store.commit_block(block, qc, writes, block.id)
        return len(blocks) / (time.perf_counter() - start)


def bench_reads(path: Path, blocks: list[Commit]) -> dict[str, float]:
    keys = [k for _, _, writes in blocks for k in writes]
    rng = random.Random(1)
    sample = [rng.choice(keys) for _ in range(100_000)]
    misses = [b"x/%d" % i for i in range(100_000)]
    figures: dict[str, float] = {}
    with Store.open(path) as store:
        start = time.perf_counter()
        for key in sample:
            store.state_get(key)
        figures["state reads (hits)"] = len(sample) / (time.perf_counter() - start)
        start = time.perf_counter()
        for key in misses:
            store.state_get(key)
        figures["state reads (misses)"] = len(misses) / (time.perf_counter() - start)
        start = time.perf_counter()
        count = sum(1 for _ in store.state_iter(b"r/"))
        figures["state iteration (keys)"] = count / (time.perf_counter() - start)
        heights = [rng.randrange(1, len(blocks) + 1) for _ in range(2000)]
        start = time.perf_counter()
        for h in heights:
            store.block_bytes_at(h)
        figures["block bytes by height"] = len(heights) / (time.perf_counter() - start)
        start = time.perf_counter()
        for h in heights[:300]:
            store.block_at(h)
        figures["blocks decoded by height"] = 300 / (time.perf_counter() - start)
        hashes = [tx.hash for block, _, _ in blocks for tx in block.txs]
        start = time.perf_counter()
        for tx_hash in hashes[:50_000]:
            store.tx_location(tx_hash)
        figures["tx index lookups"] = min(len(hashes), 50_000) / (time.perf_counter() - start)
    return figures


def bench_blobs(path: Path, mib: int) -> tuple[float, float]:
    chunk = bytearray(os.urandom(CHUNK_SIZE))
    with Store.open(path) as store:
        start = time.perf_counter()
        writer = store.blob_writer(None)
        for i in range(mib):
            chunk[:8] = i.to_bytes(8, "big")
            writer.write(chunk)
        digest = writer.finish()
        write_rate = mib / (time.perf_counter() - start)
        start = time.perf_counter()
        check = hashlib.sha256()
        for piece in store.iter_blob(digest):
            check.update(piece)
        read_rate = mib / (time.perf_counter() - start)
        assert check.digest() == digest
    return write_rate, read_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--txs", type=int, default=100)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--blob-mib", type=int, default=256)
    args = parser.parse_args()
    blocks = build(args.blocks, args.txs, args.writes)
    size = sum(len(b.encoded) for b, _, _ in blocks) / len(blocks)
    print(f"store benchmark: {args.blocks} blocks of {args.txs} txs ({size / 1024:.0f} KiB), "
          f"{args.writes} state writes each")
    with tempfile.TemporaryDirectory() as tmp:
        synced = bench_commits(Path(tmp) / "synced", blocks, sync=True)
        unsynced = bench_commits(Path(tmp) / "unsynced", blocks, sync=False)
        print(f"commits, synced (default):   {synced:10.0f} blocks/s ({synced * args.txs:,.0f} tx/s)")
        print(f"commits, sync_commits=False: {unsynced:10.0f} blocks/s ({unsynced * args.txs:,.0f} tx/s)")
        for name, value in bench_reads(Path(tmp) / "synced", blocks).items():
            print(f"{name + ':':29}{value:10.0f} /s")
        write_rate, read_rate = bench_blobs(Path(tmp) / "blobs", args.blob_mib)
        print(f"blob write (hash + fsync):   {write_rate:10.0f} MiB/s ({args.blob_mib} MiB)")
        print(f"blob read (iter_blob):       {read_rate:10.0f} MiB/s")


if __name__ == "__main__":
    main()
