"""A store writer that runs until it is killed: the subject of ``test_crash.py``.

Usage: ``python -m tests.store.crash_writer STORE_DIR`` (from the project root).

It reopens the store, then commits the deterministic chain of
:mod:`tests.store.builders` from where the store stands, forever. For each
height ``h`` it does what a node does, in a node's order:

1. every :data:`BLOB_EVERY` heights, store blob number ``h // BLOB_EVERY``
   (resuming whatever prefix an earlier, killed run left);
2. ``save_safety(safety_record(h), certified=[block])`` -- the vote for ``h``,
   with the block it votes for;
3. ``commit_block`` with the state writes of :func:`state_writes`.

It prints ``ready <last height>`` once open and ``h <height>`` after each commit.
"""

from __future__ import annotations

import hashlib
import random
import sys

from p2pcity.store import Store
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import SafetyState
from tests.store.builders import CHAIN_ID, certify, child, genesis, make_tx

TXS_PER_BLOCK = 3
BLOB_EVERY = 50
BLOB_CHUNK = 64 * 1024
BIG_SLOTS = 7


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def next_block(parent: Block | None) -> Block:
    if parent is None:
        return genesis()
    height = parent.height + 1
    txs = tuple(make_tx(height * 100 + i) for i in range(TXS_PER_BLOCK))
    return child(parent, txs, state_root=hashlib.sha256(u64(height)).digest())


def big_value(height: int) -> bytes:
    return hashlib.sha256(u64(height)).digest() * 128  # 4 KiB


def state_writes(block: Block) -> dict[bytes, bytes | None]:
    h = block.height
    writes: dict[bytes, bytes | None] = {
        b"height": u64(h),
        b"h/%08d" % h: block.id,
        b"big/%d" % (h % BIG_SLOTS): big_value(h),
    }
    if h >= 3:
        writes[b"h/%08d" % (h - 3)] = None
    return writes


def safety_record(height: int) -> SafetyState:
    qc = QuorumCert(0, height, hashlib.sha256(u64(height)).digest(), height, ())
    return SafetyState(height, height, qc, qc)


def parse_safety(record: SafetyState) -> int:
    height = record.last_voted_view
    if record != safety_record(height):
        raise AssertionError(f"safety record is torn: {record!r}")
    return height


def blob_data(number: int) -> bytes:
    return random.Random(number).randbytes(4 * 1024 * 1024 + number * 4099)


def store_blob(store: Store, number: int) -> None:
    data = blob_data(number)
    digest = hashlib.sha256(data).digest()
    if store.has_blob(digest):
        return
    writer = store.blob_writer(digest)
    for offset in range(writer.offset, len(data), BLOB_CHUNK):
        writer.write(data[offset : offset + BLOB_CHUNK])
    writer.finish()


def main(path: str) -> None:
    with Store.open(path, chain_id=CHAIN_ID) as store:
        last = store.last_height()
        parent = None if last is None else store.block_at(last)
        print(f"ready {last}", flush=True)
        while True:
            block = next_block(parent)
            h = block.height
            if h and h % BLOB_EVERY == 0:
                store_blob(store, h // BLOB_EVERY)
            store.save_safety(safety_record(h), certified=[block])
            store.commit_block(block, certify(block), state_writes(block), block.header.state_root)
            print(f"h {h}", flush=True)
            parent = block


if __name__ == "__main__":
    main(sys.argv[1])
