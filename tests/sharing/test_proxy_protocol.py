"""Asking the proxies over real libp2p hosts: threshold reached, liars and refusals reported."""

from __future__ import annotations

import trio

from p2pcity.net import Network, RequestHandler
from p2pcity.sharing.grantee import CfragVerifier, recover_data_key
from p2pcity.sharing.messages import REENCRYPT_PROTOCOL
from p2pcity.sharing.proxy import Proxy
from p2pcity.sharing.proxy_protocol import collect_cfrags, proxy_handler
from tests.factories import CHAIN
from tests.net.conftest import Keys, link, start

from .builders import GRANTEE, VALIDATORS, World, corrupt_response, new_world


def corrupting(honest: RequestHandler) -> RequestHandler:
    """A byzantine proxy wrapping the honest one."""

    async def handle(peer: str, data: bytes) -> bytes:
        reply = await honest(peer, data)
        assert reply is not None
        return corrupt_response(reply)

    return handle


async def proxy_nodes(
    nursery: trio.Nursery, keys: Keys, world: World, byzantine: frozenset[int] = frozenset(), spare: int = 0
) -> tuple[Network, list[tuple[bytes, str]]]:
    """A client node and one node per validator serving its proxy; returns (client, proxies).

    ``spare`` more keys are made (and allowed) for nodes a test starts itself.
    """
    keys.make(1 + len(VALIDATORS) + spare)
    client = await start(nursery, keys.config(0))
    proxies = []
    for index, validator in enumerate(VALIDATORS):
        net = await start(nursery, keys.config(index + 1))
        handler = proxy_handler(Proxy(validator, CHAIN), lambda: world.state, lambda: world.committed_ms)
        net.set_handler(REENCRYPT_PROTOCOL, corrupting(handler) if index in byzantine else handler)
        await link(client, net)
        proxies.append((validator.signer.public_key, net.peer_id))
    return client, proxies


async def test_collects_threshold_valid_fragments_that_open_the_key(
    nursery: trio.Nursery, keys: Keys
) -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    tx, _ = world.request(grant)
    client, proxies = await proxy_nodes(nursery, keys, world, byzantine=frozenset({0}))
    verifier = CfragVerifier(dataset.entry, grant)
    got = await collect_cfrags(client, proxies, world.ask(grant, tx), 2, 10.0, check=verifier.check)
    assert got.complete and len(got.cfrags) == 2
    assert VALIDATORS[0].signer.public_key not in [p for p, _ in got.cfrags]
    # The liar is reported if it answered before the threshold was reached.
    assert all(f.code == "invalid-cfrag" for f in got.failures)
    key = recover_data_key(GRANTEE, dataset.entry, grant, [c for _, c in got.cfrags]).data_key
    assert key == dataset.data_key


async def test_a_liar_is_named_when_every_fragment_is_needed(nursery: trio.Nursery, keys: Keys) -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset, threshold=4)
    tx, _ = world.request(grant)
    client, proxies = await proxy_nodes(nursery, keys, world, byzantine=frozenset({2}))
    verifier = CfragVerifier(dataset.entry, grant)
    got = await collect_cfrags(client, proxies, world.ask(grant, tx), 4, 10.0, check=verifier.check)
    assert not got.complete and len(got.cfrags) == 3
    [failure] = got.failures
    assert failure.code == "invalid-cfrag" and failure.proxy == VALIDATORS[2].signer.public_key
    assert "proof does not verify" in failure.reason


async def test_refusals_and_unreachable_proxies_are_reported(nursery: trio.Nursery, keys: Keys) -> None:
    world = new_world()
    grant = world.grant(world.put())
    tx, _ = world.request(grant)
    world.revoke(grant)
    client, proxies = await proxy_nodes(nursery, keys, world)
    # One proxy's district has no known peer; another is the client's own node, answered in-process.
    proxies[3] = (proxies[3][0], "")
    local = Proxy(VALIDATORS[0], CHAIN)
    proxies[0] = (proxies[0][0], client.peer_id)
    got = await collect_cfrags(
        client,
        proxies,
        world.ask(grant, tx),
        2,
        10.0,
        local={client.peer_id: lambda data: local.answer_bytes(data, world.state, world.committed_ms)},
    )
    assert not got.complete
    codes = {f.proxy: f.code for f in got.failures}
    assert codes == {
        VALIDATORS[0].signer.public_key: "revoked",
        VALIDATORS[1].signer.public_key: "revoked",
        VALIDATORS[2].signer.public_key: "revoked",
        VALIDATORS[3].signer.public_key: "unreachable",
    }
    assert local.refused["revoked"] == 1


async def test_a_silent_proxy_times_out_without_holding_up_the_rest(
    nursery: trio.Nursery, keys: Keys
) -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset, threshold=4)
    tx, _ = world.request(grant)
    client, proxies = await proxy_nodes(nursery, keys, world, spare=1)

    async def silent(peer: str, data: bytes) -> bytes:
        await trio.sleep(30)
        return b""

    mute = await start(nursery, keys.config(len(VALIDATORS) + 1))
    mute.set_handler(REENCRYPT_PROTOCOL, silent)
    await link(client, mute)
    proxies[1] = (proxies[1][0], mute.peer_id)
    started = trio.current_time()
    got = await collect_cfrags(client, proxies, world.ask(grant, tx), 4, 1.0)
    # The mute proxy would answer after 30 s: well under that means the 1 s per-proxy timeout cut it
    # off (a tighter bound failed on a loaded machine without anything being wrong).
    assert trio.current_time() - started < 15
    assert len(got.cfrags) == 3 and [f.code for f in got.failures] == ["timeout"]
