"""CPU of the codec on a node's per-transaction path: the reference codec against the compiled one.

Times, in CPU seconds of this one process, the encodings a validator runs for
every transaction and every block (a transaction from a gossip batch, its
body, the committed block written to the store, a block read back, a compact
proposal, a response of fetched transactions), once by the reference codec
(``p2pcity.codec.reference_*``) and once by what the node runs (the compiled
codec, the block splicing its transactions' bytes), alternated round by round
in the same run, with one Ed25519 verify measured alongside as the unit.

    python bench/bench_codec.py [--txs 500] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench_ledger import CHAIN, build_chain, make_txs

from p2pcity.codec import decode, encode, reference_decode, reference_encode
from p2pcity.crypto.keys import verify
from p2pcity.mempool import Batch
from p2pcity.node.wire import CompactProposal, TxResponse
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal
from p2pcity.types.tx import RecordPut, Transaction


def cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def cases(block: Block) -> dict[str, tuple[int, Callable[[], Any], Callable[[], Any]]]:
    """name -> (items per call, reference, compiled)."""
    txs = list(block.txs)
    tx_bytes = [tx.encoded for tx in txs]
    bodies = [tx.body for tx in txs]
    block_bytes = block.encoded
    compact = encode(CompactProposal.of(Proposal(block, None)))
    response = encode(TxResponse(tuple(tx_bytes)))
    batch = Batch.of(txs).encode()

    def fresh_block() -> Block:
        return Block(block.header, tuple(Transaction.decode(b) for b in tx_bytes), block.signature)

    spliced = [fresh_block() for _ in range(2)]
    return {
        "transaction decode": (
            len(txs),
            lambda: [reference_decode(Transaction, b) for b in tx_bytes],
            lambda: [decode(Transaction, b) for b in tx_bytes],
        ),
        "record.put body decode": (
            len(txs),
            lambda: [reference_decode(RecordPut, b) for b in bodies],
            lambda: [decode(RecordPut, b) for b in bodies],
        ),
        "gossip batch decode": (
            len(txs),
            lambda: reference_decode(Batch, batch),
            lambda: decode(Batch, batch),
        ),
        "block encode (store write)": (
            len(txs),
            lambda: reference_encode(spliced[0]),
            lambda: [b.__dict__.pop("encoded", None) for b in spliced] and spliced[1].encoded,
        ),
        "block decode (store read)": (
            len(txs),
            lambda: reference_decode(Block, block_bytes),
            lambda: decode(Block, block_bytes),
        ),
        "compact proposal decode": (
            len(txs),
            lambda: reference_decode(CompactProposal, compact),
            lambda: decode(CompactProposal, compact),
        ),
        "fetched transactions decode": (
            len(txs),
            lambda: reference_decode(TxResponse, response),
            lambda: decode(TxResponse, response),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=500, help="transactions per block")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    _, blocks = build_chain(make_txs(args.txs), args.txs)
    block = blocks[0]
    assert reference_encode(block) == block.encoded
    tx = block.txs[0]
    message = Transaction.signing_bytes(CHAIN, tx.sender, tx.nonce, tx.kind, tx.body)
    table = cases(block)
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in table}
    verify_us: list[float] = []
    for round_ in range(args.rounds):
        verify_us.append(
            cpu(lambda: [verify(tx.sender, message, tx.signature) for _ in range(500)]) / 500 * 1e6
        )
        for name, (count, reference, compiled) in table.items():
            pair = (reference, compiled) if round_ % 2 == 0 else (compiled, reference)
            times = [cpu(fn) / count * 1e6 for fn in pair]
            ref_t, new_t = times if round_ % 2 == 0 else times[::-1]
            samples[name][0].append(ref_t)
            samples[name][1].append(new_t)

    unit = statistics.median(verify_us)
    print(
        f"codec on the per-transaction path, {args.txs} record.put per block, {args.rounds} rounds alternated"
    )
    print(f"one Ed25519 verify: {unit:.1f} us CPU (median)")
    print(f"{'path':30} {'reference us/tx':>16} {'compiled us/tx':>15} {'now/before':>11} {'verifies':>9}")
    total_ref = total_new = 0.0
    for name, (ref, new) in samples.items():
        r, n = statistics.median(ref), statistics.median(new)
        total_ref += r
        total_new += n
        print(f"{name:30} {r:16.2f} {n:15.2f} {n / r:11.2f} {n / unit:9.3f}")
    print(f"{'all of the above':30} {total_ref:16.2f} {total_new:15.2f} {total_new / total_ref:11.2f}")


if __name__ == "__main__":
    main()
