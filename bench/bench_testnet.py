"""Committed transactions per second and commit latency on a local testnet of real processes.

Starts N node processes on 127.0.0.1, pre-signs record.put transactions from
many accounts, then offers them open-loop at a fixed rate (batches every
100 ms, spread over the nodes through POST /txs/batch) and watches blocks
appear to time each transaction from submission to commit. Prints the
machine's Ed25519 verify ceiling measured in the same run for comparison.

    python bench/bench_testnet.py --nodes 4 --rate 1000 --seconds 10
    python bench/bench_testnet.py --nodes 4 --rate 20 --seconds 10     # light load latency
    python bench/bench_testnet.py --nodes 4 --rate 1 --seconds 20      # sparse: each tx finds an idle chain
    python bench/bench_testnet.py --nodes 4 --rate 1000 --profile      # where node 0's CPU goes
    python bench/bench_testnet.py --nodes 4 --rate 200 --wan 1         # a city WAN (root: netns)
    python bench/bench_testnet.py --nodes 4 --rate 20 --wan 1 --rtt 20 # 20 ms RTT on every link

``--wan SEED`` runs every link through p2pcity.netem (each node in its own
network namespace, a relay between them) and offers the load twice on the same
network: first with the relay alone (the baseline), then with the seeded WAN
profile on every link (10-50 ms RTT, 0.1-1% loss), and prints the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pstats
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from p2pcity.crypto.keys import Identity, verify
from p2pcity.netem.profiles import WAN_LOSS, WAN_RTT_MS, wan
from p2pcity.netem.rules import Rules, Shaping
from p2pcity.testnet import Testnet
from p2pcity.types.tx import RecordPut, Transaction

CONFIG = {"consensus": {"base_timeout_ms": 2000, "max_block_txs": 5000}}


def verify_ceiling() -> float:
    who = Identity.generate()
    msg = b"x" * 150
    sig = who.signer.sign(msg)
    n = 3000
    start = time.perf_counter()
    for _ in range(n):
        verify(who.signer.public_key, msg, sig)
    return n / (time.perf_counter() - start)


def presign(chain: str, total: int, senders: int) -> list[Transaction]:
    ids = [Identity.generate() for _ in range(senders)]
    txs = []
    for i in range(total):
        who = ids[i % senders]
        nonce = i // senders + 1
        digest = hashlib.sha256(i.to_bytes(8, "big")).digest()
        body = RecordPut(f"bench{i % senders}/doc-{i}", 1, digest, 1024, "application/pdf", "{}")
        txs.append(Transaction.create(who.signer, chain, nonce, body))
    return txs


@dataclass(frozen=True, slots=True)
class SeenBlock:
    """A committed block as the watcher saw it: its header's time (the leader's clock, wall ms)
    and when the watched node first reported it committed (monotonic seconds)."""

    height: int
    view: int
    timestamp_ms: int
    tx_count: int
    seen: float


class Watcher(threading.Thread):
    """Polls node 0 for new blocks and records when each transaction became committed."""

    def __init__(self, api: str, start_height: int) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.height = start_height
        self.committed: dict[str, float] = {}
        self.included: dict[str, int] = {}  # tx hash -> the height of its block
        self.blocks: dict[int, SeenBlock] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=10) as http:
            while not self.stop.is_set():
                top = http.get("/status").json()["height"]
                now = time.monotonic()
                while self.height < top:
                    self.height += 1
                    body = http.get(f"/blocks/{self.height}").json()
                    header = body.get("header", body)
                    self.blocks[self.height] = SeenBlock(
                        self.height, header["view"], header["timestamp_ms"], len(body["txs"]), now
                    )
                    for tx in body["txs"]:
                        self.committed[tx["hash"]] = now
                        self.included[tx["hash"]] = self.height
                time.sleep(0.02)


# Monotonic seconds minus wall seconds: block times (wall ms, the leader's clock) on the
# watcher's time line. One machine, so every node's clock is this one.
WALL_TO_MONOTONIC = time.monotonic() - time.time()


def latency_account(submitted: dict[str, float], watcher: Watcher) -> str:
    """Where a committed transaction's latency went, medians over the transactions (load-independent
    in the sense that it counts the proposals it waited for and the ms each took on this run):

    - to its block: submission until its block's time (gossip batching, the leader's pacing);
    - views to commit: its block's time until the time of the block three heights up, whose
      justify is the QC that commits it everywhere (3-chain rule), per view;
    - delivery: from that block's time until the watched node reported the commit (the
      proposal's trip to the watched node, its commit, the watcher's 20 ms poll).
    """
    to_block, views, view_ms, delivery = [], [], [], []
    for h, at in submitted.items():
        height = watcher.included.get(h)
        if height is None:
            continue
        block, third = watcher.blocks.get(height), watcher.blocks.get(height + 3)
        if block is None or third is None:
            continue
        t0 = block.timestamp_ms / 1000 + WALL_TO_MONOTONIC
        t3 = third.timestamp_ms / 1000 + WALL_TO_MONOTONIC
        to_block.append((t0 - at) * 1000)
        views.append(third.view - block.view)
        view_ms.append((t3 - t0) * 1000 / 3)
        delivery.append((watcher.committed[h] - t3) * 1000)
    if not to_block:
        return "latency account: no transaction with three blocks above it seen"
    med = statistics.median
    return (
        f"latency account (medians over {len(to_block)} txs): "
        f"submission -> its block {med(to_block):.0f} ms; "
        f"3 heights up (the commit QC) in {med(views):.0f} views, {med(view_ms):.0f} ms per height; "
        f"that block -> commit seen at the watched node {med(delivery):.0f} ms"
    )


def run_load(
    net: Testnet, txs: list[Transaction], rate: float, seconds: float, watch: int = 0
) -> tuple[dict[str, float], Watcher]:
    """Offer ``txs`` at ``rate`` for ``seconds``; wait (60 s at most) until node ``watch`` commits them."""
    start_height = max(h or 0 for h in net.heights())
    watcher = Watcher(net.nodes[watch].api, start_height)
    watcher.start()
    submitted: dict[str, float] = {}
    clients = [httpx.Client(base_url=n.api, timeout=30) for n in net.nodes if n.role == "validator"]
    # A batch every 100 ms; below 10 tx/s one transaction every 1/rate s (a sparse load, where
    # each transaction finds the chain idle).
    period = max(0.1, 1 / rate)
    per_tick = max(1, round(rate * period))
    began = time.monotonic()
    tick = 0
    sent = 0
    while sent < len(txs) and time.monotonic() - began < seconds:
        batch = txs[sent : sent + per_tick]
        client = clients[tick % len(clients)]
        now = time.monotonic()
        client.post("/txs/batch", json={"txs": [tx.encoded.hex() for tx in batch]})
        for tx in batch:
            submitted[tx.hash.hex()] = now
        sent += len(batch)
        tick += 1
        delay = began + tick * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(h in watcher.committed for h in submitted):
        time.sleep(0.1)
    watcher.stop.set()
    watcher.join()
    for c in clients:
        c.close()
    return submitted, watcher


def report(
    label: str, submitted: dict[str, float], committed: dict[str, float]
) -> tuple[float, float] | None:
    """Print the run's figures; return (committed tx/s, latency p50 in s)."""
    done = [h for h in submitted if h in committed]
    latencies = sorted(committed[h] - submitted[h] for h in done)
    if not latencies:
        print(f"{label}: nothing committed")
        return None
    span = max(committed[h] for h in done) - min(submitted.values())
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"{label}: offered {len(submitted)} txs, committed {len(done)} "
        f"({len(done) / span:,.0f} tx/s), commit latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return len(done) / span, p50


def block_interval(net: Testnet, seconds: float = 5.0) -> float:
    """Seconds per committed block on node 0 over ``seconds`` (empty blocks included)."""
    start_height, began = net.heights()[0] or 0, time.monotonic()
    time.sleep(seconds)
    blocks = (net.heights()[0] or 0) - start_height
    return (time.monotonic() - began) / blocks if blocks else float("inf")


def uniform(rules: Rules, rtt_ms: float) -> Rules:
    """Every link the same round-trip time, no jitter, no loss (the issue's "20 ms RTT")."""
    for i in range(rules.nodes):
        for j in range(i + 1, rules.nodes):
            rules = rules.shape_link(i, j, Shaping(rtt_ms / 2, 0.0, 0.0))
    return rules


def wan_run(
    net: Testnet, txs: list[Transaction], rate: float, seconds: float, seed: int, rtt_ms: float | None = None
) -> None:
    """The same load twice: relay only (baseline), then the seeded WAN profile on every link
    (or, with ``rtt_ms``, that round-trip time on every link)."""
    assert net.emulation is not None
    print(f"netem: {net.emulation.mode}")
    half = len(txs) // 2
    idle = block_interval(net)
    submitted, watcher = run_load(net, txs[:half], rate, seconds)
    base = report(f"{len(net.nodes)} nodes, relay only, {rate} tx/s offered", submitted, watcher.committed)
    print(latency_account(submitted, watcher))
    base_rules = net.emulation.rules
    net.emulation.apply(wan(base_rules, seed) if rtt_ms is None else uniform(base_rules, rtt_ms))
    rules = net.emulation.rules
    rtts = [
        2 * rules.shaping(i, j).delay_ms for i in range(len(net.nodes)) for j in range(i + 1, len(net.nodes))
    ]
    if rtt_ms is None:
        print(
            f"WAN profile seed {seed}: link RTT {min(rtts):.0f}-{max(rtts):.0f} ms "
            f"(drawn from {WAN_RTT_MS[0]:.0f}-{WAN_RTT_MS[1]:.0f}), loss drawn from "
            f"{WAN_LOSS[0]:.1%}-{WAN_LOSS[1]:.0%} a link"
        )
    else:
        bound = 3 * rtt_ms + 60
        print(f"every link {rtt_ms:.0f} ms RTT, no loss: the issue's bound is 3 RTT + 60 = {bound:.0f} ms")
    shaped_idle = block_interval(net)
    submitted, watcher = run_load(net, txs[half:], rate, seconds)
    label = f"WAN seed {seed}" if rtt_ms is None else f"{rtt_ms:.0f} ms RTT"
    shaped = report(f"{len(net.nodes)} nodes, {label}, {rate} tx/s offered", submitted, watcher.committed)
    print(latency_account(submitted, watcher))
    print(f"empty-chain block interval: relay only {idle * 1000:.0f} ms, WAN {shaped_idle * 1000:.0f} ms")
    if base and shaped:
        print(
            f"WAN / baseline: throughput x{shaped[0] / base[0]:.2f}, "
            f"commit latency p50 x{shaped[1] / base[1]:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000, help="offered transactions per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--profile", metavar="FILE", help="profile node 0 into FILE; print its top functions")
    parser.add_argument(
        "--wan", metavar="SEED", type=int, help="baseline, then the seeded WAN profile (netem)"
    )
    parser.add_argument(
        "--rtt", metavar="MS", type=float, help="with --wan: this RTT on every link instead of the profile"
    )
    args = parser.parse_args()

    ceiling = verify_ceiling()
    print(f"Ed25519 verify ceiling on this machine (one core): {ceiling:,.0f} /s")
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(args.profile or Path(tmp) / "node0.prof").resolve()
        net = Testnet.create(
            Path(tmp) / "net",
            args.nodes,
            chain_id="bench-city",
            config_overrides=CONFIG,
            netem=args.wan is not None,
        )
        if args.profile:
            os.environ["P2PCITY_PROFILE"] = str(profile)
            net._spawn(net.nodes[0])
            del os.environ["P2PCITY_PROFILE"]
        net.start(timeout=120)
        try:
            net.wait_for_height(2, timeout=60)
            total = int(args.rate * args.seconds)
            if args.wan is not None:
                txs = presign(net.chain_id, 2 * total, args.senders)
                wan_run(net, txs, args.rate, args.seconds, args.wan, args.rtt)
            else:
                txs = presign(net.chain_id, total, args.senders)
                submitted, watcher = run_load(net, txs, args.rate, args.seconds)
                report(f"{args.nodes} nodes, {args.rate} tx/s offered", submitted, watcher.committed)
                print(latency_account(submitted, watcher))
        finally:
            net.down()
        if args.profile and profile.exists():
            print("node 0 profile (own time, top 25):")
            pstats.Stats(str(profile)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
