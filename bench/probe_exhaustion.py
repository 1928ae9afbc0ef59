"""Issue 12's "Why" list, re-measured from outside against one real node process.

    python bench/probe_exhaustion.py [--ttl 6]

Starts a solo node on 127.0.0.1 with its default API settings (no token: an
operator on localhost) and a short upload TTL, then tries each thing the
issue measured: a 210 MB body, a 4 GiB blob, partial and junk uploads, an
unknown blob, the whole-array routes, file modes, Host/Origin, and a file
put four times. It prints one line per probe: the answer and the node's
memory (from /proc) or disk. Every loop is bounded; traffic is loopback only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2pcity.client import Client
from p2pcity.sharing import client as sharing
from p2pcity.sharing.journal import Journal
from p2pcity.sharing.uploads import TICKET_HEADER, sign_ticket
from tests.abuse.rawhttp import send_body
from tests.factories import identities
from tests.processes import RunningNode, solo_node

MiB = 1024 * 1024
OWNER, MALLORY = identities(2, seed=97)


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def probe_bodies(node: RunningNode) -> None:
    for path, chunked in (("/txs", False), ("/txs", True), ("/txs/batch", True)):
        rss, peak = node.rss_kib(), node.peak_rss_kib()
        answer = send_body(node.url, "POST", path, 210 * 1000 * 1000, chunked=chunked)
        print(
            f"210 MB {'chunked' if chunked else 'declared'} POST {path}: {answer.status} after "
            f"{answer.sent / MiB:.1f} MiB sent; RSS {rss // 1024} -> {node.rss_kib() // 1024} MiB, "
            f"peak +{(node.peak_rss_kib() - peak)} KiB"
        )


def put_raw(node: RunningNode, chain: str, blob: bytes, declared: int, who: object, cut: bool = False) -> int:
    digest = hashlib.sha256(blob).digest()
    headers = {}
    if who is not None:
        expires = int(time.time() * 1000) + 60_000
        headers[TICKET_HEADER] = sign_ticket(who.signer, chain, digest, declared, expires)  # type: ignore[attr-defined]
    if cut:  # a partial upload: the body ends short of the declared size
        reply = httpx.put(
            f"{node.url}/blobs/{digest.hex()}",
            params={"offset": 0, "size": declared},
            content=blob,
            headers=headers,
            timeout=60,
        )
        return reply.status_code
    answer = send_body(
        node.url, "PUT", f"/blobs/{digest.hex()}?offset=0&size={declared}", declared, headers=headers
    )
    return answer.status


def probe_uploads(node: RunningNode, chain: str, ttl: int) -> None:
    blobs = next(node.home.rglob("blobs"))
    print(f"4 GiB blob, no ticket: {put_raw(node, chain, b'x', 4 * 1024**3, None)}")
    # One byte over the node's blob limit, ticketed: refused on the head. (A ticketed upload
    # within the limit is streamed to disk, booked against the quotas; not sent here: 4 GiB.)
    over = put_raw(node, chain, b"x", 4 * 1024**3 + 1, MALLORY)
    print(f"4 GiB + 1 byte blob with a ticket for it: {over}")
    before = disk(blobs)
    codes = [put_raw(node, chain, os.urandom(1 * MiB), 3 * MiB, None, cut=True) for _ in range(20)]
    grown = disk(blobs) - before
    print(f"20 partial uploads without a ticket: answers {sorted(set(codes))}, disk +{grown} B")
    codes = [put_raw(node, chain, os.urandom(1 * MiB), 3 * MiB, MALLORY, cut=True) for _ in range(20)]
    junk = [put_raw(node, chain, os.urandom(1 * MiB), 1 * MiB, MALLORY, cut=True) for _ in range(10)]
    grown = disk(blobs) - before
    print(
        f"20 ticketed partials + 10 ticketed junk blobs: answers {sorted(set(codes))}/{sorted(set(junk))}, "
        f"disk +{grown / MiB:.1f} MiB"
    )
    deadline = time.monotonic() + ttl * 4 + 30
    while disk(blobs) - before > 64 * 1024 and time.monotonic() < deadline:
        time.sleep(0.5)
    print(f"  after the {ttl} s TTL: disk +{(disk(blobs) - before) / MiB:.2f} MiB")


def probe_routes(node: RunningNode, dataset: str) -> None:
    for path in ("/status", "/blobs/{unknown}"):
        t0 = time.perf_counter()
        for _ in range(20):
            httpx.get(node.url + path.replace("{unknown}", os.urandom(32).hex()), timeout=30)
        print(f"GET {path} x20: {(time.perf_counter() - t0) / 20 * 1000:.1f} ms each")
    for path in (f"/datasets/{dataset}/grants", f"/datasets/{dataset}/audit"):
        print(f"GET {path}: {httpx.get(node.url + path, timeout=10).status_code}")
    for path in ("/grants?limit=1000", "/audit?limit=1000", "/grants?limit=100"):
        print(f"GET {path}: {httpx.get(node.url + path, timeout=10).status_code}")


def probe_origin(node: RunningNode) -> None:
    evil = httpx.get(node.url + "/status", headers={"Host": "rebind.evil.example"}, timeout=10)
    post = httpx.post(node.url + "/txs", json={}, headers={"Origin": "http://evil.example"}, timeout=10)
    print(f"Host: rebind.evil.example -> {evil.status_code}; POST with Origin: http://evil.example -> "
          f"{post.status_code}")


def probe_modes_and_repeats(node: RunningNode, work: Path) -> str:
    home = node.home
    keys = home / "keys"
    print(
        f"modes: home {mode(home)}, keys/ {mode(keys)}, config.toml {mode(home / 'config.toml')}, "
        + ", ".join(f"keys/{p.name} {mode(p)}" for p in sorted(keys.iterdir()))
    )
    survey = work / "survey.bin"
    survey.write_bytes(os.urandom(20 * MiB))
    blobs = next(home.rglob("blobs"))
    journal = Journal(work / "state")
    os.umask(0o022)
    with Client(node.url) as client:
        before = disk(blobs)
        ids = [sharing.put_data(client, OWNER, survey, "survey", journal=journal) for _ in range(4)]
        print(
            f"the same 20 MiB file put 4 times: {len({r.id for r in ids})} dataset, "
            f"{sum(r.repeated for r in ids)} repeats noticed, disk +{(disk(blobs) - before) / MiB:.1f} MiB"
        )
        out = work / "opened.bin"
        sharing.get_data(client, OWNER, ids[0].id, out)
        print(f"decrypted output {mode(out)}; journal {mode(journal.root)}")
    return ids[0].id.hex()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttl", type=int, default=6, help="the node's upload_ttl_s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="probe12-") as tmp:
        work = Path(tmp)
        nodes = solo_node(work / "node", {"upload_ttl_s": str(args.ttl)})
        node = next(nodes)
        try:
            chain = str(httpx.get(node.url + "/status", timeout=10).json()["chain_id"])
            print(f"node {node.url}, RSS {node.rss_kib() // 1024} MiB at start")
            probe_bodies(node)
            probe_uploads(node, chain, args.ttl)
            dataset = probe_modes_and_repeats(node, work)
            probe_routes(node, dataset)
            probe_origin(node)
            print(f"node RSS at the end {node.rss_kib() // 1024} MiB, peak {node.peak_rss_kib() // 1024} MiB")
        finally:
            nodes.close()


if __name__ == "__main__":
    main()
