"""Where a node's CPU goes, by layer, from py-spy raw samples (``bench_scale.py --pyspy DIR``).

Each sample's stack is charged to the innermost frame of ours or of a library
we can name (py-libp2p's Yamux, Noise, pubsub; trio; the HTTP stack; RocksDB;
signatures), so "Yamux 12%" means 12% of the busy samples were executing
Yamux code or something it called that is not itself a named layer. Samples in
epoll (the node waiting) are left out.

    python bench/profile_groups.py /tmp/spy/n4-800.txt
    python bench/profile_groups.py /tmp/spy/n4-800.txt --within next_state_root --within prune_writes

``--within NAME`` also prints the share of busy samples with a frame naming
NAME anywhere on the stack (inclusive: what it calls counts too, e.g. the
hashing and RocksDB reads of the state tree under ``next_state_root``).
"""

from __future__ import annotations

import argparse
from collections import Counter

# (substring of a frame, layer): the first match from the innermost frame outwards wins.
LAYERS = [
    ("crypto_sign", "signatures (PyNaCl Ed25519)"),
    ("nacl/", "signatures (PyNaCl Ed25519)"),
    ("rocksdict", "RocksDB"),
    ("p2pcity/store/", "store (RocksDB writes, fsync)"),
    ("p2pcity/chain/tree", "state tree"),
    ("p2pcity/chain/", "executor and ledger rules"),
    ("p2pcity/codec", "codec (encode/decode)"),
    ("p2pcity/types/", "types (hashing, checks)"),
    ("p2pcity/mempool/", "mempool"),
    ("p2pcity/consensus/", "consensus core"),
    ("p2pcity/node/", "node (driver, protocols, replica)"),
    ("p2pcity/net/pnet", "pnet (XSalsa20)"),
    ("p2pcity/net/", "p2pcity net"),
    ("p2pcity/api/", "HTTP API (ours)"),
    ("yamux", "py-libp2p Yamux"),
    ("noise", "py-libp2p Noise"),
    ("cryptography", "py-libp2p Noise"),
    ("libp2p/pubsub", "py-libp2p gossipsub"),
    ("protobuf", "py-libp2p gossipsub"),
    ("libp2p/", "py-libp2p other"),
    ("fastapi", "HTTP stack"),
    ("starlette", "HTTP stack"),
    ("hypercorn", "HTTP stack"),
    ("pydantic", "HTTP stack"),
    ("h11", "HTTP stack"),
    ("json", "HTTP stack"),
    ("trio/_socket", "socket syscalls"),
    ("trio/", "trio scheduling"),
    ("outcome", "trio scheduling"),
]
IDLE = ("get_events", "_io_epoll")


def layer_of(frames: list[str]) -> str | None:
    if any(marker in frames[-1] for marker in IDLE):
        return None
    for frame in reversed(frames):
        for needle, layer in LAYERS:
            if needle in frame:
                return layer
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--within", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    within: Counter[str] = Counter()
    for path in args.files:
        with open(path) as raw:
            for line in raw:
                stack, _, count = line.rstrip().rpartition(" ")
                frames = stack.split(";")
                layer = layer_of(frames)
                if layer is not None:
                    counts[layer] += int(count)
                    for name in args.within:
                        if any(name in frame for frame in frames):
                            within[name] += int(count)
    busy = sum(counts.values())
    print(f"{busy} busy samples")
    for layer, count in counts.most_common():
        print(f"{100 * count / busy:5.1f}%  {layer}")
    for name in args.within:
        print(f"{100 * within[name] / busy:5.1f}%  within {name} (inclusive)")


if __name__ == "__main__":
    main()
