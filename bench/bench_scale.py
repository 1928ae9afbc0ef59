"""Node CPU per committed transaction, against one Ed25519 verify, as the number of districts grows.

Starts N real node processes on 127.0.0.1 and reads every node's CPU seconds
(utime + stime from /proc/PID/stat) around each phase:

- idle: the chain runs with no load for ``--idle`` seconds -> idle CPU per node
  (fraction of one core);
- load: pre-signed record.put transactions offered open-loop at a fixed rate
  (``bench_testnet.run_load``: a batch every 100 ms, round-robin over the
  validators' POST /txs/batch) until every one has committed -> node CPU per
  committed transaction per node, in microseconds and as a ratio to one
  Ed25519 verify measured in this run (total, and with the idle CPU of the
  same span subtracted); committed tx/s; p50/p95 commit latency (submission
  to commit as seen by a watcher polling the last node).

The watcher's block reads cost the node it polls (JSON of every transaction),
so the per-node CPU figures average the *other* nodes; that node's own figure
is printed apart. CPU-second ratios hold on a shared, busy machine; wall
rates and latencies do not (they are what the two shared cores gave this run).

    python bench/bench_scale.py                       # short: n=4 at 20 and 800 tx/s
    python bench/bench_scale.py --matrix              # n = 4, 7, 10, 16; light and heavy
    python bench/bench_scale.py --nodes 16 --rate 200 --seconds 10 --agree
    python bench/bench_scale.py --nodes 4 --rate 800 --profile DIR   # cProfile every node
    python bench/bench_scale.py --rate 800 --baseline-env P2PCITY_STATE_COMMITMENT=chained --repeat 3
    python bench/bench_scale.py --idle-only --idle 20 --config consensus.empty_blocks=false \
        --baseline-config consensus.empty_blocks=true --repeat 3   # idle CPU, A/B of a setting
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_testnet import presign, run_load

from p2pcity.crypto.keys import Identity, verify
from p2pcity.testnet import Testnet

CONFIG = {"consensus": {"base_timeout_ms": 2000, "max_block_txs": 5000}}


def config_for(n: int, base_timeout_ms: int | None) -> dict[str, dict[str, int]]:
    """The testnet's settings at size ``n``. A view's work grows with n (n-1 proposals to
    execute, 2f+1 votes to gather) while the two cores stay two: the view timeout scales with
    n (2 s at n=4, 8 s at n=16) unless given, so a view is not abandoned before it can end."""
    base = base_timeout_ms or max(CONFIG["consensus"]["base_timeout_ms"], 500 * n)
    return {"consensus": {**CONFIG["consensus"], "base_timeout_ms": base, "max_timeout_ms": 8 * base}}
# Heavy offered load per size: the targets at 4 and 16, in between scaled down.
HEAVY = {4: 800, 7: 500, 10: 300, 16: 200}
LIGHT = 20
TICK = os.sysconf("SC_CLK_TCK")


def verify_cpu_us(count: int = 3000) -> float:
    """CPU microseconds of one Ed25519 verify (process time: the same unit as the nodes' figures)."""
    who = Identity.generate()
    msg = b"x" * 150
    sig = who.signer.sign(msg)
    start = time.process_time()
    for _ in range(count):
        verify(who.signer.public_key, msg, sig)
    return (time.process_time() - start) / count * 1e6


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def node_cpu(net: Testnet) -> list[float]:
    return [cpu_seconds(n.pid) for n in net.nodes if n.pid is not None]


def kernel_seconds(net: Testnet) -> float:
    """stime summed over the nodes: the kernel's part (fsync, sockets, polling) of their CPU."""
    total = 0
    for node in net.nodes:
        if node.pid is not None:
            total += int(Path(f"/proc/{node.pid}/stat").read_text().rsplit(")", 1)[1].split()[12])
    return total / TICK


@dataclass
class Row:
    nodes: int
    offered: int
    committed: int
    tx_rate: float
    p50_ms: float
    p95_ms: float
    cpu_per_tx_us: float
    cpu_per_tx_idle_us: float
    watched_per_tx_us: float
    idle_core: float
    verify_us: float

    def markdown(self) -> str:
        ratio = self.cpu_per_tx_us / self.verify_us
        ratio_idle = self.cpu_per_tx_idle_us / self.verify_us
        return (
            f"| {self.nodes} | {self.offered:,} | {self.tx_rate:,.0f} | {self.p50_ms:,.0f} ms | "
            f"{self.p95_ms:,.0f} ms | {self.cpu_per_tx_us:,.0f} us ({self.cpu_per_tx_idle_us:,.0f} us) | "
            f"{self.idle_core:.1%} | {self.verify_us:.0f} us | {ratio:.1f} ({ratio_idle:.1f}) |"
        )


HEADER = (
    "| nodes | offered tx/s | committed tx/s | p50 commit | p95 commit | node CPU per tx per node "
    "(idle subtracted) | idle CPU per node | verify | ratio (idle subtracted) |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def view_timeouts(net: Testnet) -> float:
    """Timer expiries summed over the nodes (their /metrics)."""
    total = 0.0
    for node in net.nodes:
        for line in httpx.get(node.api + "/metrics", timeout=30).text.splitlines():
            if line.startswith("p2pcity_view_timeouts_total "):
                total += float(line.split()[1])
    return total


def measure_idle(net: Testnet, seconds: float) -> list[float]:
    """Each node's CPU as a fraction of one core over ``seconds`` of an unloaded chain."""
    timeouts, height = view_timeouts(net), net.heights()[0] or 0
    before, began = node_cpu(net), time.monotonic()
    time.sleep(seconds)
    after, span = node_cpu(net), time.monotonic() - began
    blocks = (net.heights()[0] or 0) - height
    print(
        f"idle {span:.0f} s: {blocks} blocks, {view_timeouts(net) - timeouts:.0f} view timeouts (all nodes)",
        flush=True,
    )
    return [(a - b) / span for a, b in zip(after, before, strict=True)]


def measure_load(
    net: Testnet, rate: int, seconds: float, senders: int, idle: list[float], verify_us: float
) -> Row:
    n = len(net.nodes)
    txs = presign(net.chain_id, int(rate * seconds), senders)
    before, kernel, began = node_cpu(net), kernel_seconds(net), time.monotonic()
    submitted, watcher = run_load(net, txs, rate, seconds, watch=n - 1)
    after, span = node_cpu(net), time.monotonic() - began
    kernel = kernel_seconds(net) - kernel
    done = [h for h in submitted if h in watcher.committed]
    if not done:
        raise SystemExit(f"{n} nodes, {rate} tx/s: nothing committed")
    latencies = sorted(watcher.committed[h] - submitted[h] for h in done)
    commit_span = max(watcher.committed[h] for h in done) - min(submitted.values())
    used = [a - b for a, b in zip(after, before, strict=True)]
    others = range(n - 1)  # every node but the watched one
    per_node = statistics.fmean(used[i] for i in others)
    per_node_idle = statistics.fmean(used[i] - idle[i] * span for i in others)
    print(f"load: {kernel / sum(used):.0%} of the nodes' CPU was kernel time (stime)", flush=True)
    return Row(
        nodes=n,
        offered=rate,
        committed=len(done),
        tx_rate=len(done) / commit_span,
        p50_ms=statistics.median(latencies) * 1000,
        p95_ms=latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        cpu_per_tx_us=per_node / len(done) * 1e6,
        cpu_per_tx_idle_us=per_node_idle / len(done) * 1e6,
        watched_per_tx_us=used[n - 1] / len(done) * 1e6,
        idle_core=statistics.fmean(idle),
        verify_us=verify_us,
    )


def sample(pid: int | None, out: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy (pip install py-spy) records node ``pid`` for ``seconds``, raw stacks into ``out``."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f", "raw"]
    return subprocess.Popen(
        [*argv, "--nonblocking", "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def check_agreement(net: Testnet) -> int:
    """Every node's block hash at every height they all have is the same; returns the heights checked."""
    heights = [h or 0 for h in net.heights()]
    top = min(heights)
    clients = [httpx.Client(base_url=n.api, timeout=30) for n in net.nodes]
    try:
        for height in range(1, top + 1):
            hashes = {c.get(f"/blocks/{height}").json()["hash"] for c in clients}
            if len(hashes) != 1:
                raise SystemExit(f"DISAGREEMENT at height {height}: {sorted(hashes)}")
    finally:
        for c in clients:
            c.close()
    return top


def parse_setting(text: str) -> tuple[str, str, object]:
    """``section.key=value`` (value as TOML: true, 300, "x") -> (section, key, value)."""
    name, _, raw = text.partition("=")
    section, _, key = name.partition(".")
    if not section or not key or not raw:
        raise SystemExit(f"a setting is section.key=value, not {text!r}")
    return section, key, tomllib.loads(f"v = {raw}")["v"]


def overrides(base: dict[str, dict[str, int]], settings: list[str]) -> dict[str, dict[str, object]]:
    """``base`` with each ``section.key=value`` of ``settings`` applied."""
    config: dict[str, dict[str, object]] = {k: dict(v) for k, v in base.items()}
    for text in settings:
        section, key, value = parse_setting(text)
        config.setdefault(section, {})[key] = value
    return config


def run_size(n: int, rates: list[int], args: argparse.Namespace, verify_us: float, tmp: Path) -> list[Row]:
    config = overrides(config_for(n, args.base_timeout_ms), args.config)
    print(f"n={n}: view timeout {config['consensus']['base_timeout_ms']} ms", flush=True)
    net = Testnet.create(tmp / f"net{n}", n, chain_id="bench-city", config_overrides=config)
    if args.profile:
        directory = Path(args.profile).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        for node in net.nodes:
            os.environ["P2PCITY_PROFILE"] = str(directory / f"n{n}-{node.name}.prof")
            net._spawn(node)
        del os.environ["P2PCITY_PROFILE"]
    rows = []
    net.start(timeout=60 + 15 * n)
    try:
        if config["consensus"].get("empty_blocks", True):
            net.wait_for_height(2, timeout=60 + 20 * n)
        else:
            time.sleep(10)  # an idle chain commits nothing by itself: let the nodes connect and settle
        if args.idle_only:
            for _ in range(args.repeat if not args.baseline_config and not args.baseline_env else 1):
                idle = measure_idle(net, args.idle)
                print(
                    f"idle CPU per node: {statistics.fmean(idle):.2%} of a core "
                    f"[{', '.join(f'{x:.2%}' for x in idle)}]; load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                rows.append(Row(n, 0, 0, 0, 0, 0, 0, 0, 0, statistics.fmean(idle), verify_us))
            return rows
        for rate in rates:
            idle = measure_idle(net, args.idle)
            spy = (
                sample(net.nodes[0].pid, f"{args.pyspy}/n{n}-{rate}.txt", args.seconds)
                if args.pyspy
                else None
            )
            row = measure_load(net, rate, args.seconds, args.senders, idle, verify_us)
            if spy is not None:
                spy.wait(timeout=60)
                print(
                    f"py-spy samples of node 0: {args.pyspy}/n{n}-{rate}.txt (summarise: profile_groups.py)"
                )
            print(row.markdown(), f" <- watched node {row.watched_per_tx_us:,.0f} us/tx", flush=True)
            rows.append(row)
        if args.agree:
            print(f"agreement: {n} nodes hold the same block at each of heights 1..{check_agreement(net)}")
    finally:
        net.down()
    return rows


def run_ab(n: int, rates: list[int], args: argparse.Namespace, verify_us: float, tmp: Path) -> list[Row]:
    """``--repeat`` pairs of runs with and without ``--baseline-env``, alternating which goes
    first (baseline, now; now, baseline; ...) so a drift in the machine's load falls on both."""
    name, _, value = (args.baseline_env or "").partition("=")
    mine = list(args.config)
    pairs: list[tuple[list[Row], list[Row]]] = []
    for rep in range(args.repeat):
        got: dict[str, list[Row]] = {}
        for side in ("baseline", "now") if rep % 2 == 0 else ("now", "baseline"):
            args.config = mine
            if side == "baseline" and name:
                os.environ[name] = value
            if side == "baseline" and args.baseline_config:
                args.config = [*mine, *args.baseline_config]
            baseline = " ".join([args.baseline_env or "", *args.baseline_config]).strip()
            shown = baseline if side == "baseline" else "as is"
            print(f"n={n} pair {rep + 1}/{args.repeat}: {side} ({shown})", flush=True)
            spy_dir = args.pyspy
            if spy_dir:
                args.pyspy = f"{spy_dir}/{side}{rep}"  # each run's samples apart
            try:
                got[side] = run_size(n, rates, args, verify_us, tmp / f"{side}{rep}")
            finally:
                if name:
                    os.environ.pop(name, None)
                args.config = mine
                args.pyspy = spy_dir
        pairs.append((got["baseline"], got["now"]))
    if args.idle_only:
        idle = [now[0].idle_core / base[0].idle_core for base, now in pairs]
        print(
            f"n={n} idle, {len(pairs)} pairs (now / baseline): idle CPU per node "
            f"x{statistics.median(idle):.3f} median [{', '.join(f'{x:.3f}' for x in idle)}]; mean "
            f"{statistics.fmean(r[0].idle_core for _, r in pairs):.2%} / "
            f"{statistics.fmean(b[0].idle_core for b, _ in pairs):.2%} of a core",
            flush=True,
        )
        return [row for base, now in pairs for row in base + now]
    for i, rate in enumerate(rates):
        cpu = [now[i].cpu_per_tx_us / base[i].cpu_per_tx_us for base, now in pairs]
        cpu_idle = [now[i].cpu_per_tx_idle_us / base[i].cpu_per_tx_idle_us for base, now in pairs]
        rate_ratio = [now[i].tx_rate / base[i].tx_rate for base, now in pairs]
        base_cpu = statistics.fmean(b[i].cpu_per_tx_us for b, _ in pairs)
        now_cpu = statistics.fmean(r[i].cpu_per_tx_us for _, r in pairs)
        print(
            f"n={n} {rate} tx/s, {len(pairs)} pairs (now / baseline): CPU per tx "
            f"x{statistics.median(cpu):.3f} median [{', '.join(f'{c:.3f}' for c in cpu)}], "
            f"idle subtracted x{statistics.median(cpu_idle):.3f}; mean {now_cpu:,.0f} / {base_cpu:,.0f} us; "
            f"committed tx/s x{statistics.median(rate_ratio):.3f} median "
            f"[{', '.join(f'{r:.3f}' for r in rate_ratio)}]",
            flush=True,
        )
    return [row for base, now in pairs for row in base + now]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="*", help="sizes (default 4, or 4 7 10 16 with --matrix)")
    parser.add_argument("--rate", type=int, nargs="*", help="offered tx/s (default light and heavy)")
    parser.add_argument("--matrix", action="store_true", help="the full matrix: n = 4, 7, 10, 16")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per rate")
    parser.add_argument("--idle", type=float, default=5.0, help="idle measurement before each load")
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--agree", action="store_true", help="check agreement at every height at the end")
    parser.add_argument(
        "--base-timeout-ms", type=int, help="consensus view timeout (default 500 ms x n, at least 2 s)"
    )
    parser.add_argument("--dir", metavar="DIR", help="keep the testnets (node logs) under DIR")
    parser.add_argument("--profile", metavar="DIR", help="cProfile every node process into DIR")
    parser.add_argument("--pyspy", metavar="DIR", help="py-spy node 0 during each load into DIR")
    parser.add_argument(
        "--baseline-env",
        metavar="NAME=VALUE",
        help="run each size with this in the nodes' environment (the baseline) and without",
    )
    parser.add_argument(
        "--config",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="a node setting for every run (repeatable), e.g. consensus.empty_blocks=false",
    )
    parser.add_argument(
        "--baseline-config",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="a node setting for the baseline runs only (repeatable): A/B of a setting in one run",
    )
    parser.add_argument("--idle-only", action="store_true", help="measure idle CPU only (no load)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with --baseline-env: pairs of runs, alternating which of the two goes first",
    )
    args = parser.parse_args()
    sizes = args.nodes or ([4, 7, 10, 16] if args.matrix else [4])

    verify_us = verify_cpu_us()
    print(f"Ed25519 verify on this machine: {verify_us:.1f} us; load average {os.getloadavg()[0]:.1f}")
    print(HEADER, flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() if args.dir is None else contextlib.nullcontext(args.dir) as tmp:
        for n in sizes:
            rates = args.rate or [LIGHT, HEAVY.get(n, 200)]
            if args.baseline_env or args.baseline_config:
                rows += run_ab(n, rates, args, verify_us, Path(tmp))
            else:
                rows += run_size(n, rates, args, verify_us, Path(tmp))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; all rows:\n{HEADER}")
    for row in rows:
        print(row.markdown())


if __name__ == "__main__":
    main()
