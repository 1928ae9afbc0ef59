"""Ledger throughput: transactions validated per second and blocks applied per second.

Prints, measured in the same run, the raw Ed25519 verify rate of the chosen
library (PyNaCl/libsodium) as the ceiling, and pycryptodome's Ed25519 as the
baseline it replaced, so the ratios say how close the ledger gets to the
signature cost.

    python bench/bench_ledger.py [--txs 5000] [--block-size 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from p2pcity.chain.executor import execute
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.state import MemoryState
from p2pcity.crypto.keys import Identity, verify
from p2pcity.types.block import Block, BlockHeader, tx_root
from p2pcity.types.tx import District, RecordPut, Transaction

CHAIN = "bench-city"


def rate(count: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def make_txs(n: int, senders: int = 50) -> list[Transaction]:
    ids = [Identity.generate() for _ in range(senders)]
    nonces = [0] * senders
    txs = []
    for i in range(n):
        s = i % senders
        nonces[s] += 1
        body = RecordPut(f"ns{s}/doc{i}", 1, bytes(32), 1234, "application/pdf", '{"kind":"deed"}')
        txs.append(Transaction.create(ids[s].signer, CHAIN, nonces[s], body))
    return txs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=5000)
    parser.add_argument("--block-size", type=int, default=500)
    args = parser.parse_args()

    txs = make_txs(args.txs)
    encoded = [tx.encoded for tx in txs]
    message = Transaction.signing_bytes(CHAIN, txs[0].sender, 1, "record.put", txs[0].body)

    sig = txs[0].signature
    pk = txs[0].sender
    n_raw = 5000
    nacl_rate = rate(n_raw, lambda: [verify(pk, message, sig) for _ in range(n_raw)] and None)

    key = ECC.generate(curve="ed25519")
    pcd_sig = eddsa.new(key, "rfc8032").sign(message)
    verifier = eddsa.new(key.public_key(), "rfc8032")
    n_pcd = 500
    pcd_rate = rate(n_pcd, lambda: [verifier.verify(message, pcd_sig) for _ in range(n_pcd)] and None)

    decode_rate = rate(len(encoded), lambda: [Transaction.decode(e) for e in encoded] and None)

    def validate_all() -> None:
        for e in encoded:
            Transaction.decode(e).check(CHAIN)

    validate_rate = rate(len(encoded), validate_all)

    ids = [Identity.generate() for _ in range(4)]
    genesis = Genesis(
        CHAIN,
        0,
        tuple(District(f"d{i}", x.signer.public_key, x.public.pre_key, "", "validator") for i, x in enumerate(ids)),
    )
    blocks = []
    state = genesis.state()
    parent = genesis.block()
    for start in range(0, len(txs), args.block_size):
        chunk = txs[start : start + args.block_size]
        height = parent.height + 1
        result = execute(state, parent.header.state_root, CHAIN, height, height, chunk, lambda _: True)
        state.apply(result.writes)
        header = BlockHeader(
            CHAIN, height, height, parent.id, genesis.genesis_qc(), ids[0].signer.public_key,
            height, tx_root(chunk), len(chunk), result.state_root,
        )
        parent = Block.create(ids[0].signer, header, tuple(chunk))
        blocks.append(parent)

    def apply_blocks(verified: bool, make_state: Callable[[], MemoryState]) -> None:
        replica = make_state()
        root = genesis.block().header.state_root
        for block in blocks:
            result = execute(
                replica, root, CHAIN, block.height, block.header.timestamp_ms, block.txs,
                (lambda _: True) if verified else (lambda _: False),
            )
            assert result.state_root == block.header.state_root
            replica.apply(result.writes)
            root = result.state_root

    n_blocks = len(blocks)
    pre_verified = rate(n_blocks, lambda: apply_blocks(True, genesis.state))
    full = rate(n_blocks, lambda: apply_blocks(False, genesis.state))

    store_line = ""
    try:
        from p2pcity.store import Store  # noqa: PLC0415 - optional until the store lands

        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(Path(tmp) / "db")
            try:
                root = genesis.block().header.state_root

                def commit_all() -> None:
                    nonlocal root
                    base = genesis.state()
                    for block in blocks:
                        result = execute(
                            base, root, CHAIN, block.height, block.header.timestamp_ms, block.txs,
                            lambda _: True,
                        )
                        store.commit_block(block, None, result.writes, result.state_root)
                        base.apply(result.writes)
                        root = result.state_root

                store.commit_block(genesis.block(), None, genesis.state_writes(), root)
                stored = rate(n_blocks, commit_all)
                store_line = (
                    f"blocks applied + committed to RocksDB:  {stored:10.1f} blocks/s "
                    f"({stored * args.block_size:,.0f} tx/s)"
                )
            finally:
                store.close()
    except ImportError:
        store_line = "blocks committed to RocksDB:            (store not available)"

    print(f"ledger benchmark: {args.txs} record.put transactions, {args.block_size} per block")
    print(f"Ed25519 verify, PyNaCl (ceiling):        {nacl_rate:10.0f} /s")
    print(f"Ed25519 verify, pycryptodome (baseline): {pcd_rate:10.0f} /s   PyNaCl is {nacl_rate / pcd_rate:.1f}x")
    print(f"tx decode only:                          {decode_rate:10.0f} /s")
    print(
        f"tx validated (decode + signature):       {validate_rate:10.0f} /s   "
        f"= {validate_rate / nacl_rate:.2f} of the raw verify rate"
    )
    print(
        f"blocks applied, signatures pre-checked:  {pre_verified:10.1f} blocks/s "
        f"({pre_verified * args.block_size:,.0f} tx/s)"
    )
    print(f"blocks applied, verifying signatures:    {full:10.1f} blocks/s ({full * args.block_size:,.0f} tx/s)")
    print(store_line)


if __name__ == "__main__":
    main()
