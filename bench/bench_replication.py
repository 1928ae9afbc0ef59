"""Replication time of a dataset's ciphertext on a local testnet of real processes.

Puts a dataset of each size on node 0 and times, from the moment the
``dataset.register`` is committed, until every other validator holds the blob
on its own disk (HEAD, which never fetches). The baseline in the same run is the
upload of the same blob to node 0 over HTTP (client -> node on loopback), so the
ratio says what the libp2p copy costs against a plain local transfer.

    python bench/bench_replication.py --nodes 4 --sizes 1 100     # MB
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import httpx

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import client as sharing
from p2pcity.testnet import Testnet

CONFIG = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}


def held_everywhere(net: Testnet, blob_hash: str) -> bool:
    for node in net.nodes[1:]:
        try:
            if httpx.head(f"{node.api}/blobs/{blob_hash}", timeout=10).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100], help="MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        net = Testnet.create(Path(tmp) / "net", args.nodes, chain_id="bench-replica", config_overrides=CONFIG)
        net.start(timeout=180)
        try:
            with Client(net.nodes[0].api) as client:
                for mb in args.sizes:
                    path = Path(tmp) / f"data-{mb}"
                    path.write_bytes(os.urandom(mb * 1_000_000))
                    owner = Identity.generate()
                    start = time.monotonic()
                    put = sharing.put_data(client, owner, path, f"bench {mb} MB")  # upload + commit
                    committed = time.monotonic()
                    blob_hash = client.get(f"/datasets/{put.id.hex()}")["ciphertext_sha256"]
                    while not held_everywhere(net, blob_hash):
                        time.sleep(0.05)
                    done = time.monotonic()
                    upload = committed - start
                    print(
                        f"{mb:>5} MB on {args.nodes} nodes: put (encrypt+upload+commit) {upload:.2f} s, "
                        f"replicated to {args.nodes - 1} validators {done - committed:.2f} s after commit "
                        f"(ratio to the put: {(done - committed) / upload:.2f})"
                    )
        finally:
            net.down()


if __name__ == "__main__":
    main()
