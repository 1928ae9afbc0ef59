"""Upload tickets, quotas and the collection of what no committed dataset names, on a real node.

The node runs with a 2-second TTL and small quotas so the test is short; everything else
(the ticket check, the bookkeeping, the collector task) is what a production node runs.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import client as sharing
from p2pcity.sharing.uploads import TICKET_HEADER, sign_ticket
from tests.abuse.conftest import AUTH, TOKEN, RunningNode, start_node
from tests.factories import identities

KB = 1000
ALICE, BOB, CAROL = identities(3, seed=81)


TTL_S = 6


def _node(factory: pytest.TempPathFactory, ttl_s: int) -> Iterator[RunningNode]:
    settings = {
        "token": f'"{TOKEN}"',
        "upload_ttl_s": str(ttl_s),
        "upload_quota_account": str(1000 * KB),
        "upload_quota_node": str(1500 * KB),
    }
    yield from start_node(factory.mktemp("uploads-node"), settings)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """Quotas and tickets: nothing is collected while the test runs (an hour's TTL)."""
    yield from _node(tmp_path_factory, 3600)


@pytest.fixture(scope="module")
def short_ttl_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """Collection: a TTL of a few seconds (long enough for a solo node to commit a register)."""
    yield from _node(tmp_path_factory, TTL_S)


def chain_id(node: RunningNode) -> str:
    return str(httpx.get(node.url + "/status", timeout=10).json()["chain_id"])


def put(
    node: RunningNode,
    blob: bytes,
    who: Identity | None,
    *,
    declared: int | None = None,
    ticket_for: bytes | None = None,
) -> httpx.Response:
    digest = hashlib.sha256(blob).digest()
    size = len(blob) if declared is None else declared
    headers = dict(AUTH)
    if who is not None:
        expires = int(time.time() * 1000) + 60_000
        headers[TICKET_HEADER] = sign_ticket(who.signer, chain_id(node), ticket_for or digest, size, expires)
    return httpx.put(
        f"{node.url}/blobs/{digest.hex()}",
        params={"offset": 0, "size": size},
        content=blob,
        headers=headers,
        timeout=30,
    )


def eventually(what: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.25)


def head(node: RunningNode, blob: bytes | str) -> httpx.Response:
    name = blob if isinstance(blob, str) else hashlib.sha256(blob).hexdigest()
    return httpx.head(f"{node.url}/blobs/{name}", timeout=10)


def deed_blob(client: Client, dataset_id: bytes) -> str:
    return str(client.get(f"/datasets/{dataset_id.hex()}")["ciphertext_sha256"])


def test_uploads_need_a_ticket_bound_to_hash_and_size(node: RunningNode) -> None:
    blob = os.urandom(10 * KB)
    assert put(node, blob, None).status_code == 401
    other = hashlib.sha256(b"another blob").digest()
    assert put(node, blob, ALICE, ticket_for=other).status_code == 403  # replayed for another hash
    honest = put(node, blob, ALICE)
    assert honest.status_code == 201, honest.text
    # A ticket for 10 KB does not let a bigger body in.
    blob2 = os.urandom(10 * KB)
    digest = hashlib.sha256(blob2).digest()
    ticket = sign_ticket(ALICE.signer, chain_id(node), digest, 5 * KB, int(time.time() * 1000) + 60_000)
    reply = httpx.put(
        f"{node.url}/blobs/{digest.hex()}",
        params={"size": 10 * KB},
        content=blob2,
        headers={**AUTH, TICKET_HEADER: ticket},
        timeout=30,
    )
    assert reply.status_code == 403 and "5000 bytes" in reply.json()["error"]
    expired = sign_ticket(ALICE.signer, chain_id(node), digest, 10 * KB, int(time.time() * 1000) - 1)
    reply = httpx.put(
        f"{node.url}/blobs/{digest.hex()}",
        params={"size": 10 * KB},
        content=blob2,
        headers={**AUTH, TICKET_HEADER: expired},
        timeout=30,
    )
    assert reply.status_code == 403 and "expired" in reply.json()["error"]


def test_quotas_per_account_and_per_node(node: RunningNode) -> None:
    first = put(node, os.urandom(600 * KB), BOB)
    assert first.status_code == 201, first.text
    over = put(node, os.urandom(600 * KB), BOB)
    assert over.status_code == 413 and "account" in over.json()["error"]
    assert put(node, os.urandom(600 * KB), CAROL).status_code == 201  # her own quota
    full = put(node, os.urandom(600 * KB), ALICE)  # 10 KB of hers pending: the node is full first
    assert full.status_code == 413 and "node" in full.json()["error"]


def test_unreferenced_blobs_and_stale_partials_are_collected(short_ttl_node: RunningNode) -> None:
    node = short_ttl_node
    junk = os.urandom(50 * KB)
    assert put(node, junk, ALICE).status_code == 201
    assert head(node, junk).status_code == 200
    partial = os.urandom(80 * KB)
    digest = hashlib.sha256(partial).digest()
    ticket = sign_ticket(ALICE.signer, chain_id(node), digest, 80 * KB, int(time.time() * 1000) + 60_000)
    cut = httpx.put(
        f"{node.url}/blobs/{digest.hex()}",
        params={"size": 80 * KB},
        content=partial[: 30 * KB],
        headers={**AUTH, TICKET_HEADER: ticket},
        timeout=30,
    )
    assert cut.status_code == 400 and cut.json()["offset"] == 30 * KB
    assert head(node, partial).headers["Upload-Offset"] == str(30 * KB)
    eventually(lambda: head(node, junk).status_code == 404)
    eventually(lambda: head(node, partial).headers.get("Upload-Offset") == "0")


def test_a_blob_a_committed_dataset_names_is_kept(short_ttl_node: RunningNode, tmp_path: Path) -> None:
    node = short_ttl_node
    owner = identities(1, seed=82)[0]
    deed = tmp_path / "deed.pdf"
    deed.write_bytes(os.urandom(40 * KB))
    with Client(node.url, token=TOKEN) as client:
        dataset_id = sharing.put_data(client, owner, deed, "deed").id
        time.sleep(2 * TTL_S)  # the collector ran several times
        assert head(node, deed_blob(client, dataset_id)).status_code == 200
        out = tmp_path / "opened.pdf"
        sharing.get_data(client, owner, dataset_id, out)
    assert out.read_bytes() == deed.read_bytes()
