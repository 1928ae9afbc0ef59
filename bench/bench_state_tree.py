"""State tree cost: committed state writes per second with and without the tree, proof size and time.

Both runs, in the same process, commit the same batches of ledger writes to a
real RocksDB database (``p2pcity.store.db``, unsynced batches as a node's
commits without ``sync_commits``): the baseline binds each batch with the old
chained hash of the sorted writes (``H(prev, H(writes))``,
``state.chained_state_root``, what a node computes under
``P2PCITY_STATE_COMMITMENT=chained``), the tree run
computes the state tree's new nodes and writes them in the same batch. The
ratio is the tree's cost per committed write. Then proofs of present and
absent keys against the final root: size (canonical bytes) and time to build
and to verify. Times are CPU seconds of the process (``time.process_time``,
RocksDB's own threads included), so a loaded machine does not skew the ratio.

Last, the ledger itself: blocks of signed ``record.put`` transactions executed
and committed to a RocksDB store (``Store.commit_block``), once with the state
tree and once with the executor's root swapped back to the chained hash, in the
same run; the ratio is the tree's cost on committed tx/s of one node.

    python bench/bench_state_tree.py [--keys 20000] [--batch 500] [--proofs 2000] [--txs 5000]
    python bench/bench_state_tree.py --flat-hash   # + the tree with a flat node hash, cost only

``--flat-hash`` also times the same tree run with each node hashed flat,
``H(tag || bitmap || children)``, instead of the binary tree over its 4 levels:
its roots are not this chain's (no proof could be cut from them), only its cost
is compared, alternated with the real tree in the same process: what that format
change would save.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from p2pcity.chain import executor, proof, tree
from p2pcity.chain.state import chained_state_root, next_aux_root
from p2pcity.codec import encode
from p2pcity.store import Store, layout
from p2pcity.store.db import Database


class View:
    def __init__(self, db: Database) -> None:
        self.db = db

    def state_get(self, key: bytes) -> bytes | None:
        return self.db.get(layout.STATE, key)

    def state_iter(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        return self.db.iterate(layout.STATE, start or prefix, layout.prefix_end(prefix))


def batches(keys: int, batch: int) -> list[dict[bytes, bytes | None]]:
    rng = os.urandom
    out = []
    for start in range(0, keys, batch):
        # A ledger-like mix: mostly new keys, a tenth overwriting older ones.
        writes: dict[bytes, bytes | None] = {
            b"r/ns/doc%d" % i: rng(120) for i in range(start, min(keys, start + batch))
        }
        for i in range(0, start, max(1, start // max(1, batch // 10))):
            writes[b"n/acct%d" % (i % 997)] = rng(8)
        out.append(writes)
    return out


def run_hash(db: Database, work: list[dict[bytes, bytes | None]]) -> float:
    root = bytes(32)
    start = time.process_time()
    for writes in work:
        root = chained_state_root(root, writes)
        db.write([(layout.STATE, k, v) for k, v in writes.items()], sync=False)
    return time.process_time() - start


def run_tree(db: Database, work: list[dict[bytes, bytes | None]]) -> tuple[float, tree.Roots, int]:
    view = View(db)
    roots = tree.Roots(0, proof.PLACEHOLDER, bytes(32))
    db.write([(layout.STATE, tree.roots_key(0), tree.pack_roots(roots))], sync=False)
    node_writes = 0
    start = time.process_time()
    for version, writes in enumerate(work, start=1):
        aux = next_aux_root(roots.aux_root, writes)
        roots, tree_writes = tree.apply(view, roots, version, writes, aux)
        node_writes += len(tree_writes)
        batch = [(layout.STATE, k, v) for k, v in {**writes, **tree_writes}.items()]
        db.write(batch, sync=False)
    return time.process_time() - start, roots, node_writes


def _chained_hash_root(
    base: object, parent_root: bytes, height: int, writes: dict[bytes, bytes | None]
) -> tuple[bytes, dict[bytes, bytes | None]]:
    """The state root before the tree: H(parent root, H(sorted writes)), no tree writes (the
    root a node computes under P2PCITY_STATE_COMMITMENT=chained)."""
    return chained_state_root(parent_root, writes), {}


def ledger_rate(txs: list[Any], block_size: int, with_tree: bool) -> tuple[float, float]:
    """(committed tx/s, CPU s) of executing and committing ``txs`` in blocks to a RocksDB store."""
    from bench_ledger import CHAIN, build_chain  # noqa: PLC0415 - a sibling script

    real = executor.next_state_root
    if not with_tree:
        executor.next_state_root = _chained_hash_root  # type: ignore[assignment]
    try:
        genesis, blocks = build_chain(txs, block_size)
        with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "db", sync_commits=False) as store:
            root = genesis.block().header.state_root
            store.commit_block(genesis.block(), None, genesis.state_writes(), root)
            start = time.process_time()
            for block in blocks:
                result = executor.execute(
                    store, root, CHAIN, block.height, block.header.timestamp_ms, block.txs, lambda _: True
                )
                store.commit_block(block, None, result.writes, result.state_root)
                root = result.state_root
            spent = time.process_time() - start
    finally:
        executor.next_state_root = real  # type: ignore[assignment]
    return len(txs) / spent, spent


def _flat_node_hash(slots: tree.Slots) -> bytes:
    bitmap = 0
    for i, entry in enumerate(slots):
        if entry is not None:
            bitmap |= 1 << i
    children = b"".join(e[1:33] for e in slots if e is not None)
    return hashlib.sha256(b"\x04" + bitmap.to_bytes(2, "big") + children).digest()


def flat_hash_estimate(work: list[dict[bytes, bytes | None]], tmp: Path, rounds: int = 3) -> None:
    """Tree writes/s with the binary node hash and with a flat one, alternated."""
    real = tree.node_hash
    total = sum(len(w) for w in work)
    rates: dict[str, list[float]] = {"binary": [], "flat": []}
    try:
        for rep in range(rounds):
            for name in ("binary", "flat") if rep % 2 == 0 else ("flat", "binary"):
                tree.node_hash = real if name == "binary" else _flat_node_hash  # type: ignore[assignment]
                db = Database.open(tmp / f"{name}{rep}", create=True)
                spent, _, _ = run_tree(db, work)
                db.close()
                rates[name].append(total / spent)
    finally:
        tree.node_hash = real  # type: ignore[assignment]
    shown = {k: ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()}
    saved = 1 - sum(rates["binary"]) / sum(rates["flat"])
    print(f"node hash, tree writes/s: binary (now) {shown['binary']}; flat {shown['flat']} "
          f"(the flat hash would save {saved:.0%} of the tree's time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--txs", type=int, default=5000)
    parser.add_argument("--flat-hash", action="store_true", help="also time a flat node hash (cost only)")
    args = parser.parse_args()
    work = batches(args.keys, args.batch)
    total = sum(len(w) for w in work)
    with tempfile.TemporaryDirectory() as tmp:
        base_db = Database.open(Path(tmp) / "hash", create=True)
        tree_db = Database.open(Path(tmp) / "tree", create=True)
        t_hash = run_hash(base_db, work)
        t_tree, roots, node_writes = run_tree(tree_db, work)
        print(f"{total} ledger writes in {len(work)} batches of ~{args.batch}")
        print(f"  chained hash (before): {total / t_hash:10.0f} writes/s")
        print(f"  state tree (now):      {total / t_tree:10.0f} writes/s   "
              f"({t_tree / t_hash:.1f}x the time; {node_writes / total:.1f} tree writes per ledger write)")
        view = View(tree_db)
        present = [b"r/ns/doc%d" % (i * 7919 % args.keys) for i in range(args.proofs // 2)]
        absent = [b"r/ns/none%d" % i for i in range(args.proofs // 2)]
        start = time.process_time()
        proofs = [(k, tree.prove(view, roots, k)) for k in present + absent]
        t_prove = time.process_time() - start
        values = [view.state_get(k) for k in present] + [None] * len(absent)
        start = time.process_time()
        for (key, p), value in zip(proofs, values, strict=True):
            proof.verify(p, roots.tree_root, key, value)
        t_verify = time.process_time() - start
        sizes = [len(encode(p)) for _, p in proofs]
        depth = sum(len(p.siblings) for _, p in proofs) / len(proofs)
        print(f"proofs over {args.keys} keys: {sum(sizes) / len(sizes):.0f} bytes on average "
              f"(max {max(sizes)}), {depth:.1f} siblings")
        print(f"  build  {t_prove / len(proofs) * 1e6:8.1f} us/proof")
        print(f"  verify {t_verify / len(proofs) * 1e6:8.1f} us/proof")
        base_db.close()
        tree_db.close()
        if args.flat_hash:
            flat_hash_estimate(work, Path(tmp))
    from bench_ledger import make_txs  # noqa: PLC0415 - a sibling script

    txs = make_txs(args.txs)
    before, _ = ledger_rate(txs, 500, with_tree=False)
    after, _ = ledger_rate(txs, 500, with_tree=True)
    print(f"ledger, {args.txs} record.put in blocks of 500, executed + committed to RocksDB:")
    print(f"  chained hash (before): {before:8.0f} tx/s")
    print(f"  state tree (now):      {after:8.0f} tx/s   ({after / before:.2f}x)")


if __name__ == "__main__":
    main()
