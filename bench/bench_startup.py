"""CPU time of a CLI start: what ``--version``, ``--help``, ``record get`` and ``keys show`` cost.

The machine is never idle (seven agents share two cores), so wall time says
more about the neighbours than about us. Each command's CPU time (user + sys
of that process alone, from ``getrusage(RUSAGE_CHILDREN)`` around it) is what
it would take on an idle core. ``record get`` reads a real record from a real
solo node this script starts; the node's CPU is not counted (RUSAGE_CHILDREN
counts only children that ended and were waited for, and the node ends last).

Baselines in the same run: the bare interpreter (``python -c pass``), and the
imports ``record get`` used to pay for (``p2pcity.client``, that is httpx)
and ``keys show`` used to pay for (libp2p, through ``p2pcity.net.identity``).

    python bench/bench_startup.py [--runs 10]

Target: under 0.3 s of CPU for each command.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TARGET_S = 0.3
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_of(argv: list[str]) -> float:
    """User + sys seconds of one run of ``argv`` (it must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def start_solo_node(root: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    home, api = root / "home", f"127.0.0.1:{free_port()}"
    p2p = f"/ip4/127.0.0.1/tcp/{free_port()}"
    cli = [PY, "-m", "p2pcity"]
    init = [*cli, "init", "--home", str(home), "--district", "registry", "--solo", "--p2p", p2p, "--api", api]
    subprocess.run(init, check=True, capture_output=True)
    proc = subprocess.Popen([*cli, "start", "--home", str(home)], stderr=subprocess.DEVNULL)
    url = f"http://{api}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/status", timeout=2) as answer:
                if not json.loads(answer.read())["syncing"]:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the solo node did not start")
        time.sleep(0.3)
    return proc, url, home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        node, url, home = start_solo_node(root)
        try:
            doc = root / "deed.txt"
            doc.write_text("deed of lot 7\n")
            key = str(home / "keys" / "identity.json")
            put = [PY, "-m", "p2pcity", "record", "put", "land/lot-7", "--file", str(doc), "--key", key]
            subprocess.run([*put, "--node", url], check=True, capture_output=True, timeout=120)
            cases = {
                "python -c pass (baseline)": [PY, "-c", "pass"],
                "p2pcity --version": [PY, "-m", "p2pcity", "--version"],
                "p2pcity --help": [PY, "-m", "p2pcity", "--help"],
                "p2pcity record get": [PY, "-m", "p2pcity", "record", "get", "land/lot-7", "--node", url],
                "p2pcity keys show": [PY, "-m", "p2pcity", "keys", "show", key],
                "import p2pcity.client (httpx; record get before)": [PY, "-c", "import p2pcity.client"],
                "import p2pcity.net.identity (libp2p; keys show before)": [
                    PY,
                    "-c",
                    "import p2pcity.net.identity",
                ],
            }
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.runs):  # interleaved, so a burst of load hits every case alike
                for name, argv in cases.items():
                    samples[name].append(cpu_of(argv))
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=60)
    base = statistics.median(samples["python -c pass (baseline)"])
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"CPU time (user+sys) per run, {args.runs} runs each; load average {load}")
    print(f"{'command':56} {'median':>8} {'min':>8} {'x python':>9}")
    for name, values in samples.items():
        median = statistics.median(values)
        flag = "" if "(" in name or median < TARGET_S else f"  over the {TARGET_S} s target"
        print(f"{name:56} {median:7.3f}s {min(values):7.3f}s {median / base:8.1f}x{flag}")


if __name__ == "__main__":
    main()
