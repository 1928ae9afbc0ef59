"""How long a new node takes to catch up a long chain, and the memory it needs doing so.

Builds a chain of ``--blocks`` committed blocks with the testnet's own keys: each
block signed by the round-robin leader of its view, each certified by a QC of
2f+1 real vote signatures, each state root computed by the ledger's executor
(empty blocks: the chain's length, not its load, is what sync time grows with).
It is written into the stores of nodes 0..n-2 (one store built, then copied, as
a district restoring a backup would), those nodes are started and must commit
on top of it (so the chain is one they accept), then the last node starts from
genesis and syncs it all. Printed: the generation rate, the sync time, blocks/s
per tenth of the chain (the baseline is the first tenth: a rate that falls
further along means cost grows with length), and the syncing node's peak RSS
against a node that holds the same chain without syncing it.

    python bench/bench_sync.py --blocks 100000 --halted   # sync alone (the chain waits for it)
    python bench/bench_sync.py --blocks 2000              # sync while the chain moves on
    python bench/bench_sync.py --blocks 2000 --profile node3.prof
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from p2pcity.chain.executor import execute
from p2pcity.chain.genesis import Genesis
from p2pcity.config import NodeConfig
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.crypto.keys import Identity
from p2pcity.store import Store
from p2pcity.testnet import Testnet, TestnetError
from p2pcity.types.block import Block, BlockHeader, QuorumCert, VoteSignature, tx_root, vote_message

CONFIG = {"consensus": {"base_timeout_ms": 2000, "empty_block_interval_ms": 500}}
STEP_MS = 2  # between generated blocks' timestamps: the chain ends just before the nodes start


def _qc(chain: str, block: Block, voters: list[Identity]) -> QuorumCert:
    ts = block.header.timestamp_ms
    message = vote_message(chain, 0, block.view, block.height, block.id, ts)
    votes = sorted(
        (VoteSignature(v.signer.public_key, ts, v.signer.sign(message)) for v in voters),
        key=lambda s: s.signer,
    )
    return QuorumCert(0, block.view, block.id, block.height, tuple(votes))


def generate(store: Store, genesis: Genesis, ids: list[Identity], blocks: int) -> None:
    """Commit ``blocks`` certified empty blocks on ``genesis`` into ``store``."""
    chain = genesis.chain_id
    by_key = {i.signer.public_key: i for i in ids}
    validators = ValidatorSet(genesis.validators)
    quorum = validators.quorum
    state = genesis.state()
    parent = genesis.block()
    store.commit_block(parent, None, genesis.state_writes(), parent.header.state_root)
    justify = genesis.genesis_qc()
    for height in range(1, blocks + 1):
        ts = parent.header.timestamp_ms + STEP_MS
        result = execute(state, parent.header.state_root, chain, height, ts, [])
        proposer = by_key[validators.leader(height)]
        header = BlockHeader(
            chain, 0, height, height, parent.id, justify, proposer.signer.public_key, ts,
            tx_root([]), 0, result.state_root,
        )  # fmt: skip
        block = Block.create(proposer.signer, header, ())
        # 2f+1 voters, rotating, so every validator takes part in every reputation window.
        voters = [ids[(height + k) % len(ids)] for k in range(quorum)]
        qc = _qc(chain, block, voters)
        state.apply(result.writes)
        store.commit_block(block, qc, result.writes, result.state_root)
        parent, justify = block, qc
    # No safety record, as a chain backup restores it: the holders derive theirs from the head
    # (node.recovery.derived_safety; before, they restarted in view 1 under it and never proposed).


COUNTERS = ("p2pcity_block_fetches_total", "p2pcity_sync_requests_total", "p2pcity_synced_blocks_total")


def counters(api: str) -> dict[str, float]:
    """The syncing node's catch-up counters, from its /metrics."""
    text = httpx.get(api + "/metrics", timeout=10).text
    out = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in out:
            out[name] = float(value)
    return out


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def prepare(net: Testnet, blocks: int) -> None:
    """Back-date the genesis, build the chain into node 0's store, copy it to the other holders."""
    # The chain must end before now (a vote checks a block's time against the clock).
    genesis = Genesis.load(net.dir / "genesis.json")
    ended = int(time.time() * 1000) - 60_000
    genesis = dataclasses.replace(genesis, genesis_time_ms=ended - blocks * STEP_MS)
    for node in net.nodes:
        genesis.save(node.home / "genesis.json")
    genesis.save(net.dir / "genesis.json")
    configs = [NodeConfig.load(node.home) for node in net.nodes]
    ids = [Identity.load(c.identity_file) for c in configs]
    began = time.monotonic()
    store = Store.open(configs[0].data_dir, chain_id=genesis.chain_id, sync_commits=False)
    try:
        generate(store, genesis, ids, blocks)
    finally:
        store.close()
    built = time.monotonic() - began
    print(f"generated {blocks:,} certified blocks in {built:.0f} s ({blocks / built:,.0f} blocks/s)")
    for config in configs[1:-1]:
        shutil.rmtree(config.data_dir, ignore_errors=True)
        shutil.copytree(configs[0].data_dir, config.data_dir)


@dataclasses.dataclass
class Sync:
    took: float = 0.0
    first: float = 0.0  # when its first synced block showed: process start, peers, the first survey
    marks: list[float] = dataclasses.field(default_factory=list)  # when each tenth was reached
    peak_kib: int = 0
    holder_kib: int = 0
    counts: dict[str, float] = dataclasses.field(default_factory=dict)


def watch(net: Testnet, blocks: int, timeout: float, profile: Path | None, halted: bool) -> Sync:
    """Start the last node from genesis and follow it until it holds ``blocks``.

    ``halted``: one holder fewer, so the others lack a quorum and the chain stands still
    while the node syncs (sync alone); it resumes once the synced node makes the quorum.
    """
    syncer = len(net.nodes) - 1
    holders = list(range(syncer - 1 if halted else syncer))
    for i in holders:
        net._spawn(net.nodes[i])
    net.wait_ready(300, holders)
    if not halted:
        net.wait_for_height(blocks + 2, timeout=300, nodes=holders)
        print(f"nodes {holders} resumed on the generated chain: heights {net.heights()[:-1]}")
    if profile is not None:
        os.environ["P2PCITY_PROFILE"] = str(profile)
    net._spawn(net.nodes[syncer])
    os.environ.pop("P2PCITY_PROFILE", None)
    pid = net.nodes[syncer].pid
    assert pid is not None
    out = Sync()
    start = time.monotonic()
    # halted, the last two blocks are not provably final (no two certified blocks on top): sync
    # proves the rest, consensus brings those two once the chain moves again
    target = blocks - 2 if halted else blocks
    tenth = max(1, target // 10)
    while True:
        height = net.heights()[syncer] or 0
        if not out.first and height > 0:
            out.first = time.monotonic() - start
        while len(out.marks) < 10 and height >= (len(out.marks) + 1) * tenth:
            out.marks.append(time.monotonic() - start)
        if height >= target:
            break
        if time.monotonic() - start > timeout:
            raise SystemExit(f"sync not done in {timeout:.0f} s: node {syncer} at {height}")
        time.sleep(0.2)
    out.took = time.monotonic() - start
    out.peak_kib = rss_kib(pid, "VmHWM")
    out.holder_kib = rss_kib(net.nodes[0].pid or 0, "VmRSS")
    out.counts = counters(net.nodes[syncer].api)
    if halted:  # the synced node completes the quorum: the chain it synced is one it extends
        try:
            net.wait_for_height(blocks + 2, timeout=120, nodes=[*holders, syncer])
            print(f"with node {syncer} synced the chain resumed: heights {net.heights()}")
        except TestnetError as exc:  # a finding to print, not a reason to lose the figures
            print(f"the chain did NOT resume within 120 s once node {syncer} synced: {exc}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=10_000, help="10^5 for the issue-15 figure")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up the sync after this (s)")
    parser.add_argument("--profile", metavar="FILE", help="profile the syncing node; print its top functions")
    parser.add_argument(
        "--halted", action="store_true", help="sync alone: one holder fewer, no quorum until it has synced"
    )
    args = parser.parse_args()
    profile = Path(args.profile).resolve() if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        net = Testnet.create(Path(tmp) / "net", args.nodes, chain_id="sync-city", config_overrides=CONFIG)
        prepare(net, args.blocks)
        try:
            sync = watch(net, args.blocks, args.timeout, profile, args.halted)
        finally:
            net.down()
    print(
        f"node {args.nodes - 1} synced {args.blocks:,} blocks in {sync.took:.1f} s "
        f"({args.blocks / sync.took:,.0f} blocks/s; its first block after {sync.first:.1f} s: "
        "process start, peers, the first survey)"
    )
    tenth = max(1, (args.blocks - 2 if args.halted else args.blocks) // 10)
    # Tenths reached within one 0.2 s poll have no rate of their own.
    rates = [
        tenth / (b - a) for a, b in zip([sync.first, *sync.marks], sync.marks, strict=False) if b - a >= 0.2
    ]
    if rates:
        listed = "; ".join(f"{r:.0f}" for r in rates)
        print(f"blocks/s per tenth of the chain: {listed} (last / first tenth: x{rates[-1] / rates[0]:.2f})")
    if sync.took > sync.first:
        print(
            f"from its first synced block on: {args.blocks / (sync.took - sync.first):,.0f} blocks/s "
            f"({sync.took - sync.first:.1f} s)"
        )
    print(
        f"syncing node peak RSS {sync.peak_kib / 1024:.0f} MiB; a node holding the chain without "
        f"syncing it: {sync.holder_kib / 1024:.0f} MiB (ratio x{sync.peak_kib / max(sync.holder_kib, 1):.2f})"
    )
    c = sync.counts
    print(
        f"requests of the syncing node: {c.get(COUNTERS[0], 0):,.0f} blocks by id, "
        f"{c.get(COUNTERS[1], 0):,.0f} sync ranges; {c.get(COUNTERS[2], 0):,.0f} blocks committed by sync"
    )
    if profile is not None and profile.exists():
        print("syncing node's profile (cumulative, top 30):")
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
