"""SharingService wired as the node will: real hosts, stores and proxies, HTTP on one of them."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import trio
from fastapi import FastAPI

from p2pcity.codec import encode
from p2pcity.sharing.api_routes import add_sharing_routes
from p2pcity.sharing.grantee import open_dataset, recover_data_key
from p2pcity.sharing.service import SharingService
from p2pcity.store import Store
from tests.factories import CHAIN
from tests.net.conftest import Keys, link, start

from .builders import GRANTEE, VALIDATORS, new_world


async def test_node_fetches_blobs_from_holders_and_fans_out_to_proxies(
    nursery: trio.Nursery, keys: Keys, tmp_path: Path
) -> None:
    keys.make(len(VALIDATORS))
    world = new_world(peer_ids=keys.ids)
    services = []
    for index, validator in enumerate(VALIDATORS):
        net = await start(nursery, keys.config(index))
        store = Store.open(tmp_path / f"store{index}", chain_id=CHAIN)
        service = SharingService(net, store, validator, CHAIN, lambda: world.state, frame_size=64 * 1024)
        service.register()
        services.append(service)
    for service in services[1:]:
        await link(services[0].network, service.network)

    # The owner uploaded to district 3's node; our node (district 0) holds nothing yet.
    dataset = world.put(plaintext=os.urandom(300_000), chunk_size=4096, holders=(keys.ids[3],))
    with services[3].store.blob_writer(None) as writer:
        writer.write(dataset.ciphertext)
        writer.finish()
    grant = world.grant(dataset)
    tx, _ = world.request(grant)

    app = FastAPI()
    add_sharing_routes(app, services[0])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as http:
        blob = await http.get(f"/blobs/{dataset.entry.dataset.ciphertext_hash.hex()}")
        assert blob.status_code == 200 and blob.content == dataset.ciphertext
        reply = await http.post("/reencrypt", json={"request": encode(world.ask(grant, tx)).hex()})
    body = reply.json()
    assert body["complete"], body
    cfrags = [bytes.fromhex(c["cfrag"]) for c in body["cfrags"]]
    key = recover_data_key(GRANTEE, dataset.entry, grant, cfrags).data_key
    assert b"".join(open_dataset(dataset.entry, key, [blob.content])) == dataset.plaintext
    assert services[0].metrics()["blobs_fetched"] == 1
    assert sum(s.metrics()["served"] for s in services) >= 2
