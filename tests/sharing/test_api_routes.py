"""The sharing HTTP routes over a real Store, the real ledger and real proxies (ASGI, in process)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI

from p2pcity.chain.entries import DatasetEntry, GrantEntry
from p2pcity.codec import decode, encode
from p2pcity.sharing.api_routes import add_sharing_routes
from p2pcity.sharing.grantee import recover_data_key
from p2pcity.store import Store
from tests.factories import CHAIN

from .builders import GRANTEE, STRANGER, corrupt_response, new_world
from .local import LocalSharing


def node(tmp_path: Path) -> tuple[httpx.AsyncClient, LocalSharing]:
    world = new_world()
    handle = LocalSharing(Store.open(tmp_path / "node", chain_id=CHAIN), world)
    app = FastAPI()
    add_sharing_routes(app, handle)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")
    return http, handle


async def pieces(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    """A streamed request body."""
    for at in range(0, len(data), size):
        yield data[at : at + size]


async def test_put_head_get_round_trip_and_ranges(tmp_path: Path) -> None:
    http, _ = node(tmp_path)
    data = os.urandom(1_500_000)
    digest = hashlib.sha256(data).hexdigest()
    assert (await http.head(f"/blobs/{digest}")).status_code == 404
    reply = await http.put(f"/blobs/{digest}", content=pieces(data))
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"hash": digest, "size": len(data), "holder": "peer-0"}
    head = await http.head(f"/blobs/{digest}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert (await http.get(f"/blobs/{digest}")).content == data
    assert (await http.get(f"/blobs/{digest}", params={"offset": 1_000_000})).content == data[1_000_000:]
    # Uploading what is already stored answers at once.
    assert (await http.put(f"/blobs/{digest}", content=b"")).json()["holder"] == "peer-0"
    assert (await http.get(f"/blobs/{digest}", params={"offset": len(data) + 1})).status_code == 416


async def test_a_wrong_upload_is_refused_and_discarded(tmp_path: Path) -> None:
    http, handle = node(tmp_path)
    data = os.urandom(10_000)
    wrong = hashlib.sha256(b"something else").hexdigest()
    reply = await http.put(f"/blobs/{wrong}", content=data)
    assert reply.status_code == 400 and "upload discarded" in reply.json()["error"]
    assert handle.upload_offset(bytes.fromhex(wrong)) == 0
    reply = await http.put("/blobs/nothex", content=data)
    assert reply.status_code == 400 and "64 hex" in reply.json()["error"]
    digest = hashlib.sha256(data).hexdigest()
    reply = await http.put(f"/blobs/{digest}", params={"size": 100}, content=data)
    assert reply.status_code == 413 and handle.upload_offset(bytes.fromhex(digest)) == 0
    reply = await http.put(f"/blobs/{digest}", params={"size": 2**40}, content=data)
    assert reply.status_code == 413 and "at most" in reply.json()["error"]


async def test_an_interrupted_upload_resumes_from_the_node_offset(tmp_path: Path) -> None:
    http, handle = node(tmp_path)
    data = os.urandom(700_000)
    raw = hashlib.sha256(data).digest()
    with handle.store.blob_writer(raw) as writer:  # what a dropped connection leaves behind
        writer.write(data[:300_000])
    head = await http.head(f"/blobs/{raw.hex()}")
    assert head.status_code == 404 and head.headers["upload-offset"] == "300000"
    reply = await http.put(f"/blobs/{raw.hex()}", params={"offset": 0}, content=data)
    assert reply.status_code == 409 and reply.json()["offset"] == 300_000
    # A body that ends short of the declared size is kept too.
    reply = await http.put(
        f"/blobs/{raw.hex()}", params={"offset": 300_000, "size": len(data)}, content=data[300_000:500_000]
    )
    assert reply.status_code == 400 and reply.json()["offset"] == 500_000
    assert (await http.head(f"/blobs/{raw.hex()}")).headers["upload-offset"] == "500000"
    reply = await http.put(f"/blobs/{raw.hex()}", params={"offset": 500_000}, content=data[500_000:])
    assert reply.status_code == 201, reply.text
    assert (await http.get(f"/blobs/{raw.hex()}")).content == data


async def test_get_fetches_a_missing_blob_from_the_datasets_holder(tmp_path: Path) -> None:
    http, handle = node(tmp_path)
    dataset = handle.world.put(plaintext=os.urandom(5000))
    holder = Store.open(tmp_path / "holder", chain_id=CHAIN)
    with holder.blob_writer(None) as writer:
        writer.write(dataset.ciphertext)
        writer.finish()
    digest = dataset.entry.dataset.ciphertext_hash.hex()
    reply = await http.get(f"/blobs/{digest}")
    assert reply.status_code == 404 and "no holder could serve" in reply.json()["error"]
    handle.holders["peer-0"] = holder  # the dataset names peer-0, which is this node: skipped
    handle.holders["peer-2"] = holder
    reply = await http.get(f"/blobs/{digest}", params={"dataset": dataset.entry.dataset_id.hex()})
    assert reply.status_code == 200 and reply.content == dataset.ciphertext
    assert handle.store.has_blob(dataset.entry.dataset.ciphertext_hash)


async def test_entries_are_the_ledgers_canonical_bytes(tmp_path: Path) -> None:
    http, handle = node(tmp_path)
    dataset = handle.world.put()
    grant = handle.world.grant(dataset)
    raw = (await http.get(f"/datasets/{dataset.entry.dataset_id.hex()}/entry")).json()["entry"]
    assert decode(DatasetEntry, bytes.fromhex(raw)) == dataset.entry
    raw = (await http.get(f"/grants/{grant.grant_id.hex()}/entry")).json()["entry"]
    assert decode(GrantEntry, bytes.fromhex(raw)) == grant
    assert (await http.get(f"/grants/{'00' * 32}/entry")).status_code == 404


async def test_reencrypt_fans_out_and_returns_fragments_that_open_the_key(tmp_path: Path) -> None:
    http, handle = node(tmp_path)
    world = handle.world
    dataset = world.put(plaintext=b"referral history" * 50)
    grant = world.grant(dataset)
    tx, _ = world.request(grant)
    reply = await http.post("/reencrypt", json={"request": encode(world.ask(grant, tx)).hex()})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["complete"] and body["threshold"] == 2 and len(body["cfrags"]) == 2
    cfrags = [bytes.fromhex(c["cfrag"]) for c in body["cfrags"]]
    assert recover_data_key(GRANTEE, dataset.entry, grant, cfrags).data_key == dataset.data_key


async def test_reencrypt_names_a_lying_proxy(tmp_path: Path) -> None:
    http, handle = node(tmp_path)
    world = handle.world
    grant = world.grant(world.put(), threshold=4)  # every answer is needed, so the liar is heard
    tx, _ = world.request(grant)
    honest = handle.answers["peer-1"]
    handle.answers["peer-1"] = lambda data: corrupt_response(honest(data))
    body = (await http.post("/reencrypt", json={"request": encode(world.ask(grant, tx)).hex()})).json()
    assert not body["complete"] and len(body["cfrags"]) == 3
    [failure] = body["failures"]
    assert failure["code"] == "invalid-cfrag" and failure["peer"] == "peer-1"


async def test_reencrypt_precheck_refuses_before_any_fan_out(tmp_path: Path) -> None:
    http, handle = node(tmp_path)
    world = handle.world
    grant = world.grant(world.put())
    tx, _ = world.request(grant)

    async def post(request: bytes) -> httpx.Response:
        return await http.post("/reencrypt", json={"request": request.hex()})

    assert (await post(encode(world.ask(grant, tx, signer=STRANGER)))).status_code == 403
    assert (await post(encode(world.ask(grant, os.urandom(32))))).status_code == 409
    reply = await post(b"\x93junk")
    assert reply.status_code == 400 and "malformed" in reply.json()["error"]
    world.revoke(grant)
    reply = await post(encode(world.ask(grant, tx)))
    assert reply.status_code == 403 and reply.json()["code"] == "revoked"
    assert all(not p.served and not p.refused for p in handle.proxies.values())
    assert (await http.post("/reencrypt", json={"request": "zz"})).status_code == 422
