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
from p2pcity.crypto.keys import Identity, verify
from p2pcity.store import Store
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


def signature_rates(message: bytes, tx: Transaction) -> tuple[float, float]:
    n_raw = 5000
    nacl = rate(n_raw, lambda: [verify(tx.sender, message, tx.signature) for _ in range(n_raw)] and None)
    key = ECC.generate(curve="ed25519")
    pcd_sig = eddsa.new(key, "rfc8032").sign(message)
    verifier = eddsa.new(key.public_key(), "rfc8032")
    n_pcd = 500
    pcd = rate(n_pcd, lambda: [verifier.verify(message, pcd_sig) for _ in range(n_pcd)] and None)
    return nacl, pcd


def build_chain(txs: list[Transaction], block_size: int) -> tuple[Genesis, list[Block]]:
    ids = [Identity.generate() for _ in range(4)]
    districts = tuple(
        District(f"d{i}", x.signer.public_key, x.public.pre_key, "", "validator") for i, x in enumerate(ids)
    )
    genesis = Genesis(CHAIN, 0, districts)
    blocks = []
    state = genesis.state()
    parent = genesis.block()
    for start in range(0, len(txs), block_size):
        chunk = txs[start : start + block_size]
        height = parent.height + 1
        result = execute(state, parent.header.state_root, CHAIN, height, height, chunk, lambda _: True)
        state.apply(result.writes)
        header = BlockHeader(
            CHAIN,
            0,
            height,
            height,
            parent.id,
            genesis.genesis_qc(),
            ids[0].signer.public_key,
            height,
            tx_root(chunk),
            len(chunk),
            result.state_root,
        )
        parent = Block.create(ids[0].signer, header, tuple(chunk))
        blocks.append(parent)
    return genesis, blocks


def apply_rate(genesis: Genesis, blocks: list[Block], verified: bool) -> float:
    def apply_all() -> None:
        replica = genesis.state()
        root = genesis.block().header.state_root
        for block in blocks:
            result = execute(
                replica,
                root,
                CHAIN,
                block.height,
                block.header.timestamp_ms,
                block.txs,
                (lambda _: True) if verified else (lambda _: False),
            )
            assert result.state_root == block.header.state_root
            replica.apply(result.writes)
            root = result.state_root

    return rate(len(blocks), apply_all)


def store_rate(genesis: Genesis, blocks: list[Block]) -> float:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "db") as store:
        root = genesis.block().header.state_root
        store.commit_block(genesis.block(), None, genesis.state_writes(), root)

        def commit_all() -> None:
            nonlocal root
            for block in blocks:
                result = execute(
                    store, root, CHAIN, block.height, block.header.timestamp_ms, block.txs, lambda _: True
                )
                store.commit_block(block, None, result.writes, result.state_root)
                root = result.state_root

        return rate(len(blocks), commit_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=5000)
    parser.add_argument("--block-size", type=int, default=500)
    args = parser.parse_args()

    txs = make_txs(args.txs)
    encoded = [tx.encoded for tx in txs]
    message = Transaction.signing_bytes(CHAIN, txs[0].sender, 1, "record.put", txs[0].body)
    nacl_rate, pcd_rate = signature_rates(message, txs[0])
    decode_rate = rate(len(encoded), lambda: [Transaction.decode(e) for e in encoded] and None)
    validate_rate = rate(len(encoded), lambda: [Transaction.decode(e).check(CHAIN) for e in encoded] and None)
    genesis, blocks = build_chain(txs, args.block_size)
    pre_verified = apply_rate(genesis, blocks, verified=True)
    full = apply_rate(genesis, blocks, verified=False)
    stored = store_rate(genesis, blocks)
    size = args.block_size

    print(f"ledger benchmark: {args.txs} record.put transactions, {size} per block")
    print(f"Ed25519 verify, PyNaCl (ceiling):        {nacl_rate:10.0f} /s")
    print(f"Ed25519 verify, pycryptodome (baseline): {pcd_rate:10.0f} /s   ratio {nacl_rate / pcd_rate:.1f}x")
    print(f"tx decode only:                          {decode_rate:10.0f} /s")
    print(
        f"tx validated (decode + signature):       {validate_rate:10.0f} /s   "
        f"= {validate_rate / nacl_rate:.2f} of the raw verify rate"
    )
    print(
        f"blocks applied, signatures pre-checked:  {pre_verified:10.1f} blocks/s "
        f"({pre_verified * size:,.0f} tx/s)"
    )
    print(f"blocks applied, verifying signatures:    {full:10.1f} blocks/s ({full * size:,.0f} tx/s)")
    print(f"blocks applied + committed to RocksDB:   {stored:10.1f} blocks/s ({stored * size:,.0f} tx/s)")


if __name__ == "__main__":
    main()
