"""A power cut of the whole testnet, again and again: how soon the chain commits after it.

Issue 9's bound: SIGKILL every node at once, restart them all, and the chain commits
again within 2x the base view timeout. This starts one ``--nodes`` testnet with the
product's consensus settings (or ``--base-timeout-ms``), lets it commit, and then
``--cuts`` times: SIGKILL all nodes together, read each store's committed head (the
nodes are down), start them all, and time

- *start*: from the spawn to every node's API answering (process start and imports:
  the machine's share, not the protocol's);
- *connect*: from all answering to every node connected to all others;
- *resume*: from all answering to every node committed past the highest head on disk
  (the figure the bound is about), and its ratio to 2x the base timeout.

The baseline, measured in the same run before the first cut: the steady interval
between commits (every node at a new height), to compare *resume* with.

A city's clients do not stop at a power cut: ``--tps`` transactions a second (each
from a fresh account) are offered throughout, to whichever node answers; the ones a
cut loses from the mempools are simply lost (clients would retry). ``--tps 0`` cuts
an idle chain, where every block after the restart waits the empty-block interval.

    python bench/bench_restart.py [--cuts 10] [--nodes 4] [--tps 5] [--base-timeout-ms 2000]
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from p2pcity.config import ConsensusSettings, NodeConfig
from p2pcity.store import Store
from p2pcity.testnet import Testnet

sys.path.insert(0, str(Path(__file__).parent))
from bench_testnet import presign


class Offer(threading.Thread):
    """Offers ``tps`` transactions a second, round-robin to the nodes, until stopped."""

    def __init__(self, net: Testnet, tps: int) -> None:
        super().__init__(daemon=True)
        self.net, self.tps = net, tps
        self.stop = threading.Event()
        self.accepted = 0

    def run(self) -> None:
        apis = itertools.cycle([node.api for node in self.net.nodes])
        while not self.stop.is_set():
            for tx in presign(self.net.chain_id, self.tps, self.tps):  # fresh accounts: nonce 1 each
                try:
                    response = httpx.post(f"{next(apis)}/txs", json={"tx": tx.encoded.hex()}, timeout=2)
                    self.accepted += response.status_code == 202
                except httpx.HTTPError:
                    pass  # that node is down for the cut
                self.stop.wait(1 / self.tps)


def stored_head(net: Testnet) -> int:
    """The highest committed height in any node's store (all nodes are down)."""
    heights = []
    for node in net.nodes:
        config = NodeConfig.load(node.home)
        with Store.open(config.data_dir, create=False) as store:
            heights.append(store.last_height() or 0)
    return max(heights)


@dataclass
class Restart:
    """When each milestone of one restart was first seen (time.monotonic())."""

    quorum_answered: float = math.inf
    all_answered: float = math.inf
    all_connected: float = math.inf
    first_commit: float = math.inf
    all_past: float = math.inf


def watch_restart(net: Testnet, head: int, deadline: float) -> Restart:
    """Poll every node's /status until all are past ``head``; the milestones on the way."""
    n = len(net.nodes)
    quorum = n - (n - 1) // 3
    seen = Restart()
    while seen.all_past == math.inf:
        if time.monotonic() > deadline:
            raise SystemExit(f"no full restart past height {head} within the deadline ({seen})")
        statuses = [net.status_of(i) for i in range(n)]
        now = time.monotonic()
        up = [s for s in statuses if s is not None]
        if len(up) >= quorum:
            seen.quorum_answered = min(seen.quorum_answered, now)
        if len(up) == n:
            seen.all_answered = min(seen.all_answered, now)
            if all(s["peers"] >= n - 1 for s in up):
                seen.all_connected = min(seen.all_connected, now)
        if any(int(s["height"]) > head for s in up):
            seen.first_commit = min(seen.first_commit, now)
        if len(up) == n and all(int(s["height"]) > head for s in up):
            seen.all_past = now
        time.sleep(0.05)
    seen.all_connected = min(seen.all_connected, seen.all_past)  # connected by then, if not seen
    return seen


def all_past(net: Testnet, height: int, deadline: float) -> float:
    while time.monotonic() < deadline:
        heights = net.heights()
        if all(h is not None and h > height for h in heights):
            return time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"the chain did not commit past {height} within the deadline (heights {net.heights()})")


def steady_interval(net: Testnet, commits: int) -> float:
    """Seconds per commit on every node, over ``commits`` commits of the running chain."""
    start_height = min(h or 0 for h in net.heights())
    start = time.monotonic()
    all_past(net, start_height + commits - 1, start + 120)
    return (time.monotonic() - start) / commits


def summary(values: list[float]) -> str:
    return f"min {min(values):6.2f}  median {statistics.median(values):6.2f}  max {max(values):6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--tps", type=int, default=5, help="transactions offered a second (0: an idle chain)")
    parser.add_argument("--base-timeout-ms", type=int, default=ConsensusSettings().base_timeout_ms)
    args = parser.parse_args()
    bound = 2 * args.base_timeout_ms / 1000
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        overrides = {"consensus": {"base_timeout_ms": args.base_timeout_ms}}
        net = Testnet.create(Path(tmp), args.nodes, chain_id="restart-city", config_overrides=overrides)
        with net:
            net.wait_for_height(3, timeout=120)
            offer = Offer(net, args.tps)
            if args.tps:
                offer.start()
            interval = steady_interval(net, 5)
            starts: list[float] = []
            connects: list[float] = []
            firsts: list[float] = []
            resumes: list[float] = []
            for cut in range(args.cuts):
                net.wait_for_height(min(h or 0 for h in net.heights()) + 1, timeout=120)
                net.kill_all()
                head = stored_head(net)
                spawned = time.monotonic()
                net.start(wait=False)
                times = watch_restart(net, head, spawned + 180)
                starts.append(times.all_answered - spawned)
                connects.append(times.all_connected - times.all_answered)
                firsts.append(times.first_commit - times.quorum_answered)
                resumes.append(times.all_past - times.all_answered)
                print(
                    f"cut {cut + 1:2}: head {head:4}  start {starts[-1]:5.2f} s  "
                    f"connect {connects[-1]:5.2f} s  first commit {firsts[-1]:5.2f} s  "
                    f"all resumed {resumes[-1]:5.2f} s",
                    flush=True,
                )
            offer.stop.set()
    print(
        f"\n{args.nodes} nodes, base timeout {args.base_timeout_ms} ms, {args.cuts} power cuts, "
        f"{args.tps} tx/s offered ({offer.accepted} accepted)"
    )
    print(f"start    {summary(starts)}   (spawn to every API answering)")
    print(f"connect  {summary(connects)}   (answering to all peers connected)")
    print(f"first    {summary(firsts)}   (2f+1 answering to the first commit past the stored head)")
    print(f"all      {summary(resumes)}   (all answering to every node past the stored head)")
    print(f"baseline: one commit every {interval:.2f} s in steady state, same run")
    for name, values in (("first", firsts), ("all", resumes)):
        worst, median = max(values), statistics.median(values)
        print(
            f"{name} / 2x base timeout: median {median / bound:.2f}, max {worst / bound:.2f} "
            f"(bound {bound:.1f} s: {'met' if worst <= bound else 'NOT met'}); "
            f"median / steady commit interval {median / interval:.1f}"
        )


if __name__ == "__main__":
    main()
