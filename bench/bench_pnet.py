"""Private-network wire cost: spec XSalsa20 (ours) vs py-libp2p 0.8.1's Salsa20, same run.

Two figures per wire:
- cipher: MB/s of one streaming direction (pycryptodome Salsa20 underneath both;
  XSalsa20 adds one HSalsa20 per connection, measured as connection setups/s);
- stream: MiB/s of a 16 MiB request/response over two Networks on 127.0.0.1
  (TCP + pnet + Noise + Yamux), and with no private network as the baseline.

    python bench/bench_pnet.py [--mib 16] [--rounds 7]

Compare rows of one run (a shared 2-core VM moves +-20 % between runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
from Crypto.Cipher import Salsa20

from p2pcity.net import NetConfig, Network, create_key_file
from p2pcity.net.xsalsa20 import XSalsa20

KEY = bytes(range(32))
NONCE = bytes(range(24))


def cipher_rates(total: int, rounds: int = 7, chunk: int = 64 * 1024) -> dict[str, float]:
    """Median MB/s per cipher (taking turns each round) and XSalsa20 setups per second."""
    data = bytes(chunk)
    ciphers = {
        "spec XSalsa20": XSalsa20(KEY, NONCE).xor,
        "py-libp2p 0.8.1 Salsa20": Salsa20.new(key=KEY, nonce=NONCE[:8]).encrypt,
    }
    samples: dict[str, list[float]] = {name: [] for name in ciphers}
    for _ in range(rounds):
        for name, xor in ciphers.items():
            started = time.perf_counter()
            for _ in range(total // chunk):
                xor(data)
            samples[name].append(total / (time.perf_counter() - started) / 1e6)
    rates = {name: statistics.median(values) for name, values in samples.items()}
    started = time.perf_counter()
    setups = 2000
    for _ in range(setups):
        XSalsa20(KEY, NONCE)
    rates["XSalsa20 setups/s"] = setups / (time.perf_counter() - started)
    return rates


ROWS = (
    ("no private network", None, "spec"),
    ("spec pnet", "5a" * 32, "spec"),
    ("py-libp2p 0.8.1 pnet", "5a" * 32, "py-libp2p-0.8.1"),
)


async def stream_rates(directory: Path, size: int, rounds: int) -> dict[str, float]:
    """Median MiB/s per wire; the wires take turns each round, so load spikes hit all alike."""

    async def echo_size(peer: str, data: bytes) -> bytes:
        return len(data).to_bytes(8, "big")

    def config(name: str, i: int, psk: str | None, wire: str, peer: str) -> NetConfig:
        return NetConfig(
            chain_id="bench",
            key_file=directory / f"{name}-{i}.key",
            listen_addrs=["/ip4/127.0.0.1/tcp/0"],
            psk=psk,
            pnet=wire,
            allowed_peers=frozenset({peer}),
            rendezvous=False,
            max_frame_size=size + 1024,
            request_timeout=120,
            io_timeout=60,
        )

    samples: dict[str, list[float]] = {name: [] for name, _, _ in ROWS}
    async with trio.open_nursery() as nursery:
        pairs = []
        for name, psk, wire in ROWS:
            ids = [create_key_file(directory / f"{name}-{i}.key") for i in range(2)]
            server = Network(config(name, 0, psk, wire, ids[1]))
            client = Network(config(name, 1, psk, wire, ids[0]))
            await nursery.start(server.run)
            await nursery.start(client.run)
            server.set_handler("sink", echo_size)
            client.add_addresses(server.peer_id, server.listen_addrs)
            with trio.fail_after(30):
                while not await client.connect(server.peer_id):
                    await trio.sleep(0.2)
            pairs.append((name, client, server.peer_id))
        payload = bytes(size)
        for _ in range(rounds):
            for name, client, server_id in pairs:
                started = time.perf_counter()
                await client.request(server_id, "sink", payload, timeout=120)
                samples[name].append(size / (time.perf_counter() - started) / 2**20)
        nursery.cancel_scope.cancel()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rates = cipher_rates(16 * 2**20)
    base = rates["py-libp2p 0.8.1 Salsa20"]
    print("cipher, one direction, 64 KiB writes, median of 7:")
    for name in ("spec XSalsa20", "py-libp2p 0.8.1 Salsa20"):
        print(f"  {name:26s} {rates[name]:8.0f} MB/s  ({rates[name] / base:.2f}x the 0.8.1 wire)")
    print(f"  XSalsa20 setup (HSalsa20) {rates['XSalsa20 setups/s']:8.0f} per second")
    size = args.mib * 2**20
    print(f"stream: {args.mib} MiB request over TCP + pnet + Noise + Yamux, median of {args.rounds}:")
    with tempfile.TemporaryDirectory() as tmp:
        results = trio.run(stream_rates, Path(tmp), size, args.rounds)
    plain = results["no private network"]
    for name, rate in results.items():
        print(f"  {name:26s} {rate:8.1f} MiB/s  ({rate / plain:.2f}x no pnet)")


if __name__ == "__main__":
    main()
