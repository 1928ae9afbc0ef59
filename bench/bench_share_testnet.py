"""End-to-end time to share and open a file on a local 4-district testnet.

For each size: the owner encrypts, uploads and registers the dataset (put),
grants a second key (grant), and the grantee requests access, collects
capsule fragments from the proxies, downloads the ciphertext from another
node and decrypts (get). Each phase waits for its commit, as a user would.

    python bench/bench_share_testnet.py [--sizes 1,100] (MB)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import client as sharing
from p2pcity.testnet import Testnet


def write_random(path: Path, megabytes: int) -> None:
    with path.open("wb") as fh:
        for _ in range(megabytes):
            fh.write(os.urandom(1024 * 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,100", help="comma-separated sizes in MB")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        net = Testnet.create(root / "net", 4, chain_id="bench-share")
        net.start(timeout=120)
        try:
            net.wait_for_height(2, timeout=60)
            owner_node, grantee_node = Client(net.nodes[0].api, 600), Client(net.nodes[1].api, 600)
            print(
                "size     put (encrypt+upload+commit)  grant (commit)  get (request+proxies+download+decrypt)"
            )
            for mb in sizes:
                owner, bank = Identity.generate(), Identity.generate()
                source, copy = root / f"in-{mb}", root / f"out-{mb}"
                write_random(source, mb)
                t0 = time.perf_counter()
                dataset = sharing.put_data(owner_node, owner, source, f"{mb} MB").id
                t1 = time.perf_counter()
                sharing.grant(owner_node, owner, dataset, bank.public, confirm=[grantee_node])
                t2 = time.perf_counter()
                sharing.get_data(grantee_node, bank, dataset, copy)
                t3 = time.perf_counter()
                assert copy.stat().st_size == source.stat().st_size
                print(
                    f"{mb:>4} MB  {t1 - t0:10.2f} s ({mb / (t1 - t0):6.1f} MB/s)  {t2 - t1:10.2f} s  "
                    f"{t3 - t2:10.2f} s ({mb / (t3 - t2):6.1f} MB/s)   total {t3 - t0:.2f} s"
                )
                source.unlink()
                copy.unlink()
        finally:
            net.down()


if __name__ == "__main__":
    main()
