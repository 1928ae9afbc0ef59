"""Costs of the "available but invisible" protocol, one number per step a user waits for.

    python bench/bench_sharing.py [--quick]

- envelope: streaming AES-256-GCM encrypt / decrypt, file to file, MB/s, for
  a 1 MB and a 100 MB dataset (``--quick``: 1 MB and 20 MB);
- grant: building an access.grant (key fragments + sealing one to each
  validator) for n = 4 and n = 7 validators;
- proxy: re-encryptions per second through ``Proxy.answer`` (ledger checks
  included), cold (every request unseals and verifies its key fragment, as on
  a grant's first request) and warm (the verified fragment is cached);
- grantee: verifying the capsule fragments and combining t of them into the
  data key, for t = 2 (n = 4) and t = 3 (n = 7);
- blob transfer: ``fetch_blob`` of 32 MiB between two real libp2p hosts on
  127.0.0.1 (Noise + Yamux, 1 MiB frames), store to store.

Each figure is the median of three timed runs; on a shared VM expect +-20 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio

from p2pcity.chain import queries
from p2pcity.chain.entries import DatasetEntry, GrantEntry
from p2pcity.chain.executor import execute
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.handlers import dataset_id_of, grant_id_of
from p2pcity.chain.state import MemoryState
from p2pcity.crypto.keys import Identity
from p2pcity.net import NetConfig, Network, create_key_file
from p2pcity.sharing.blob_protocol import blob_handler, fetch_blob
from p2pcity.sharing.datakey import dataset_body
from p2pcity.sharing.envelope import decrypt_file, encrypt_file, new_data_key
from p2pcity.sharing.grantee import recover_data_key
from p2pcity.sharing.grants import build_grant, proxy_keys
from p2pcity.sharing.messages import BLOB_PROTOCOL, ReencryptRequest
from p2pcity.sharing.proxy import Proxy
from p2pcity.store import Store
from p2pcity.types.tx import AccessRequest, District, Transaction

CHAIN = "bench-city"
MB = 1_000_000


def median_seconds(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_second(fn: Callable[[], object], budget: float) -> float:
    fn()
    rates = []
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (now := time.perf_counter()) - start < budget / 3:
            fn()
            n += 1
        rates.append(n / (now - start))
    return statistics.median(rates)


def bench_envelope(size: int, workdir: Path) -> tuple[float, float]:
    src, enc, dec = workdir / "plain", workdir / "blob", workdir / "out"
    with open(src, "wb") as fh:
        left = size
        while left:
            step = min(left, 4 * MB)
            fh.write(os.urandom(step))
            left -= step
    key = new_data_key()
    digest: list[bytes] = []

    def encrypt() -> None:
        with open(src, "rb") as fin, open(enc, "wb") as fout:
            digest[:] = [encrypt_file(fin, fout, key).ciphertext_hash]

    def decrypt() -> None:
        with open(enc, "rb") as fin, open(dec, "wb") as fout:
            decrypt_file(fin, fout, key, digest[0])

    enc_s = median_seconds(encrypt)
    dec_s = median_seconds(decrypt)
    return size / MB / enc_s, size / MB / dec_s


class Ledger:
    """A genesis with ``n`` validators and one block per transaction, through the real executor."""

    def __init__(self, n: int) -> None:
        self.validators = [Identity.generate() for _ in range(n)]
        districts = tuple(
            District(f"d{i}", v.signer.public_key, v.public.pre_key, f"peer-{i}", "validator")
            for i, v in enumerate(self.validators)
        )
        self.genesis = Genesis(CHAIN, 1_700_000_000_000, districts)
        self.state: MemoryState = self.genesis.state()
        self.root = self.genesis.block().header.state_root
        self.height = 0
        self.nonces: dict[bytes, int] = {}

    def commit(self, who: Identity, body: Any) -> Transaction:
        nonce = self.nonces[who.signer.public_key] = self.nonces.get(who.signer.public_key, 0) + 1
        tx = Transaction.create(who.signer, CHAIN, nonce, body)
        self.height += 1
        result = execute(self.state, self.root, CHAIN, self.height, 1_700_000_000_000 + self.height, [tx])
        assert result.receipts[0].ok, result.receipts[0].error
        self.state.apply(result.writes)
        self.root = result.state_root
        return tx

    def dataset(self, owner: Identity) -> DatasetEntry:
        key, digest = new_data_key(), os.urandom(32)  # the ciphertext itself plays no part here
        tx = self.commit(owner, dataset_body(owner, CHAIN, key, digest, 1, "bench"))
        entry = queries.dataset(self.state, dataset_id_of(tx))
        assert entry is not None
        return entry

    def grant(self, owner: Identity, dataset: DatasetEntry, grantee: Identity) -> GrantEntry:
        body = build_grant(owner, CHAIN, dataset, grantee.public, proxy_keys(self.state))
        entry = queries.grant(self.state, grant_id_of(self.commit(owner, body)))
        assert entry is not None
        return entry


class _Forgetful:
    def served(self, request_tx: bytes) -> bool:
        return False

    def mark(self, request_tx: bytes) -> None:
        pass


def bench_validators(n: int, owner: Identity, grantee: Identity, budget: float) -> list[tuple[str, str]]:
    ledger = Ledger(n)
    dataset = ledger.dataset(owner)
    keys = proxy_keys(ledger.state)
    build_ms = 1000 / per_second(lambda: build_grant(owner, CHAIN, dataset, grantee.public, keys), budget)
    rows = [(f"grant build, n={n} (t={(n - 1) // 3 + 1})", f"{build_ms:.1f} ms")]

    grant = ledger.grant(owner, dataset, grantee)
    request_tx = ledger.commit(grantee, AccessRequest(grant.grant_id, "bench")).hash
    request = ReencryptRequest.sign(grantee.signer, CHAIN, grant.grant_id, request_tx)
    validator = ledger.validators[0]
    now = 1_700_000_000_000 + ledger.height

    def proxy() -> Proxy:
        # A proxy serves a request once; the bench re-serves one request to time the work itself.
        return Proxy(validator, CHAIN, served=_Forgetful())

    cold = per_second(lambda: proxy().answer(request, ledger.state, now), budget)
    warm_proxy = proxy()
    warm = per_second(lambda: warm_proxy.answer(request, ledger.state, now), budget)
    rows.append((f"proxy re-encrypt, cold (unseal + verify kfrag), n={n}", f"{cold:,.0f} /s"))
    rows.append((f"proxy re-encrypt, warm (cached kfrag), n={n}", f"{warm:,.0f} /s"))

    cfrags = [Proxy(v, CHAIN).answer(request, ledger.state, now).cfrag for v in ledger.validators]
    t = grant.grant.threshold
    combine_ms = 1000 / per_second(lambda: recover_data_key(grantee, dataset, grant, cfrags[:t]), budget)
    rows.append((f"grantee verify {t} cfrags + combine, n={n}", f"{combine_ms:.2f} ms"))
    return rows


async def blob_transfer(workdir: Path, size: int) -> float:
    """MiB/s of one fetch_blob between two hosts on loopback."""
    ids = [create_key_file(workdir / f"p2p{i}.key") for i in range(2)]
    configs = [
        NetConfig(
            chain_id="bench",
            key_file=workdir / f"p2p{i}.key",
            listen_addrs=["/ip4/127.0.0.1/tcp/0"],
            psk="5a" * 32,
            allowed_peers=frozenset({ids[1 - i]}),
            rendezvous=False,
        )
        for i in range(2)
    ]
    held = Store.open(workdir / "held", chain_id="bench")
    with held.blob_writer(None) as writer:
        for _ in range(size // (1 << 20)):
            writer.write(os.urandom(1 << 20))
        digest = writer.finish()
    local = Store.open(workdir / "local", chain_id="bench")
    async with trio.open_nursery() as nursery:
        client, server = Network(configs[0]), Network(configs[1])
        await nursery.start(client.run)
        await nursery.start(server.run)
        server.set_stream_handler(BLOB_PROTOCOL, blob_handler(held))
        client.add_addresses(server.peer_id, server.listen_addrs)
        with trio.fail_after(10):
            while not await client.connect(server.peer_id):
                await trio.sleep(0.05)
        start = time.perf_counter()
        await fetch_blob(client, server.peer_id, digest, local)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return size / (1 << 20) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller files, shorter timings")
    args = parser.parse_args()
    budget = 1.0 if args.quick else 3.0
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        for size in (1 * MB, (20 if args.quick else 100) * MB):
            enc, dec = bench_envelope(size, Path(tmp))
            rows.append((f"envelope encrypt {size // MB} MB (file to file)", f"{enc:,.0f} MB/s"))
            rows.append((f"envelope decrypt+verify {size // MB} MB", f"{dec:,.0f} MB/s"))

    owner, grantee = Identity.generate(), Identity.generate()
    for n in (4, 7):
        rows += bench_validators(n, owner, grantee, budget)

    with tempfile.TemporaryDirectory() as tmp:
        speed = trio.run(blob_transfer, Path(tmp), 32 << 20)
        rows.append(("blob fetch over libp2p, 32 MiB, loopback", f"{speed:,.0f} MiB/s"))

    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>12}")


if __name__ == "__main__":
    main()
