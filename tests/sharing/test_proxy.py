"""The proxy's decision for every refusal reason, over a real ledger, and a served re-encryption."""

from __future__ import annotations

import os

from p2pcity.chain import queries
from p2pcity.chain.handlers import grant_id_of
from p2pcity.codec import decode, encode
from p2pcity.crypto import umbral
from p2pcity.sharing.grantee import CfragVerifier
from p2pcity.sharing.messages import ReencryptRequest, ReencryptResponse, Refusal
from p2pcity.sharing.proxy import Proxy, Work, check_request
from p2pcity.types.tx import AccessGrant, SealedKeyFrag
from tests.factories import CHAIN

from .builders import GRANTEE, OWNER, STRANGER, VALIDATORS, World, new_world

PROXY = VALIDATORS[0]


def served(world: World, request: ReencryptRequest, proxy: Proxy | None = None) -> ReencryptResponse:
    return (proxy or Proxy(PROXY, CHAIN)).answer(request, world.state, world.committed_ms)


def refusal(world: World, request: ReencryptRequest, proxy: Proxy | None = None) -> str:
    response = served(world, request, proxy)
    assert not response.served and not response.cfrag
    return response.refusal


def test_serves_a_committed_granted_request_with_a_verifiable_cfrag() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    tx, receipt = world.request(grant)
    assert receipt.ok
    proxy = Proxy(PROXY, CHAIN)
    response = proxy.answer(world.ask(grant, tx), world.state, world.committed_ms)
    assert response.served and response.proxy == PROXY.signer.public_key
    CfragVerifier(dataset.entry, grant).verify(response.cfrag)
    # Asked again: one committed request, one re-encryption per proxy.
    again = proxy.answer(world.ask(grant, tx), world.state, world.committed_ms)
    assert again.refusal == Refusal.ALREADY_SERVED
    # A second request (a second counted use) is served, from the cached key fragment.
    tx2, _ = world.request(grant)
    assert proxy.answer(world.ask(grant, tx2), world.state, world.committed_ms).served
    assert proxy.metrics() == {"served": 2, "refused_already-served": 1}


def test_no_grant_bad_signature_and_malformed() -> None:
    world = new_world()
    grant = world.grant(world.put())
    tx, _ = world.request(grant)
    fake = ReencryptRequest.sign(GRANTEE.signer, CHAIN, os.urandom(32), tx)
    assert refusal(world, fake) == Refusal.NO_GRANT
    assert refusal(world, world.ask(grant, tx, signer=STRANGER)) == Refusal.BAD_SIGNATURE
    other_chain = ReencryptRequest.sign(GRANTEE.signer, "other-city", grant.grant_id, tx)
    assert refusal(world, other_chain) == Refusal.BAD_SIGNATURE
    reply = decode(
        ReencryptResponse, Proxy(PROXY, CHAIN).answer_bytes(b"\x93junk", world.state, world.committed_ms)
    )
    assert reply.refusal == Refusal.MALFORMED


def test_a_validator_without_a_fragment_is_not_a_proxy() -> None:
    world = new_world()
    grant = world.grant(world.put())
    tx, _ = world.request(grant)
    assert refusal(world, world.ask(grant, tx), Proxy(STRANGER, CHAIN)) == Refusal.NOT_A_PROXY


def test_request_not_committed_or_not_a_request_under_this_grant() -> None:
    world = new_world()
    dataset = world.put()
    grant, other = world.grant(dataset), world.grant(dataset)
    assert refusal(world, world.ask(grant, os.urandom(32))) == Refusal.NOT_COMMITTED
    # A committed transaction that is not an access request: the grant itself.
    grant_tx = next(tx.hash for b in world.chain.blocks for tx in b.txs if tx.kind == "access.grant")
    assert refusal(world, world.ask(grant, grant_tx)) == Refusal.REQUEST_FAILED
    # A request under another grant of the same grantee does not open this one.
    tx_other, _ = world.request(other)
    assert refusal(world, world.ask(grant, tx_other)) == Refusal.REQUEST_FAILED


def test_wrong_grantee() -> None:
    world = new_world()
    grant = world.grant(world.put())
    tx, receipt = world.request(grant, who=STRANGER)
    assert not receipt.ok and receipt.error.startswith("wrong-grantee:")
    # Even signed by the real grantee, someone else's (refused) request opens nothing.
    assert refusal(world, world.ask(grant, tx)) == Refusal.WRONG_GRANTEE


def test_revoked_from_the_revoke_height_on() -> None:
    world = new_world()
    grant = world.grant(world.put())
    tx, _ = world.request(grant)
    assert served(world, world.ask(grant, tx)).served
    world.revoke(grant)
    response = served(world, world.ask(grant, tx))
    assert response.refusal == Refusal.REVOKED and "revoked at height" in response.reason
    late, receipt = world.request(grant)
    assert not receipt.ok
    assert refusal(world, world.ask(grant, late)) == Refusal.REVOKED


def test_expiry_is_judged_at_the_request_block_time_and_again_when_serving() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset, expires_at_ms=world.now_ms + 1500)
    in_time, receipt = world.request(grant)  # block time: grant + 1000 ms
    assert receipt.ok
    assert served(world, world.ask(grant, in_time)).served  # before the expiry: served
    too_late, receipt = world.request(grant)  # grant + 2000 ms
    assert receipt.error.startswith("expired:")
    assert refusal(world, world.ask(grant, too_late)) == Refusal.EXPIRED
    # The chain's clock is past the expiry now: even the request made in time is over.
    assert refusal(world, world.ask(grant, in_time)) == Refusal.EXPIRED


def test_used_up_counts_at_request_time() -> None:
    world = new_world()
    grant = world.grant(world.put(), max_uses=1)
    first, _ = world.request(grant)
    second, receipt = world.request(grant)
    assert receipt.error.startswith("used-up:")
    assert refusal(world, world.ask(grant, second)) == Refusal.USED_UP
    # The one allowed use was counted by the ledger; its request is still served.
    assert served(world, world.ask(grant, first)).served


def test_a_bad_key_fragment_is_refused_and_remembered() -> None:
    world = new_world()
    dataset = world.put()
    good = world.grant(dataset)
    # The owner seals garbage to validator 0 (the ledger cannot tell: it is encrypted).
    pre = umbral.PublicKey.from_bytes(PROXY.public.pre_key)
    kfrags = tuple(
        SealedKeyFrag(k.validator, k.pre_key, umbral.encrypt_to(pre, os.urandom(310)))
        if k.validator == PROXY.signer.public_key
        else k
        for k in good.grant.kfrags
    )
    g = good.grant
    body = AccessGrant(g.dataset_id, g.grantee, g.grantee_pre_key, g.verifying_key, 2, kfrags, 0, 0, "")
    tx, receipt = world.commit(OWNER, body)
    assert receipt.ok
    bad = queries.grant(world.state, grant_id_of(tx))
    assert bad is not None
    request_tx, _ = world.request(bad)
    proxy = Proxy(PROXY, CHAIN)
    assert refusal(world, world.ask(bad, request_tx), proxy) == Refusal.BAD_KFRAG
    assert refusal(world, world.ask(bad, request_tx), proxy) == Refusal.BAD_KFRAG
    assert proxy.metrics() == {"served": 0, "refused_bad-kfrag": 2}
    # Another proxy of the same grant is unaffected.
    assert (
        Proxy(VALIDATORS[1], CHAIN).answer(world.ask(bad, request_tx), world.state, world.committed_ms).served
    )


def test_check_request_without_a_proxy_is_the_nodes_precheck() -> None:
    world = new_world()
    grant = world.grant(world.put())
    tx, _ = world.request(grant)
    work = check_request(world.ask(grant, tx), world.state, CHAIN, None, world.committed_ms)
    assert isinstance(work, Work) and work.sealed_kfrag is None and work.access.granted
    response = Proxy(PROXY, CHAIN).answer_bytes(encode(world.ask(grant, tx)), world.state, world.committed_ms)
    assert decode(ReencryptResponse, response).served
