"""The access-control matrix, table-driven, against the real ledger and the real proxies.

Each row builds a situation on a fresh chain and names what the ledger says
about the access request (its receipt) and what every proxy answers. The
honest row is the control: the same harness serves it. README.md and
SECURITY.md list this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from p2pcity.chain.access import SERVE_WINDOW_MS, Refusal
from p2pcity.chain.executor import BlockError
from p2pcity.chain.handlers import grant_id_of
from p2pcity.crypto.keys import Identity
from p2pcity.sharing.messages import ReencryptRequest
from p2pcity.sharing.proxy import Proxy
from p2pcity.types.tx import AccessRequest, AccessRevoke, Transaction
from tests.factories import CHAIN

from .builders import GRANTEE, OWNER, STRANGER, World, new_world, proxies


@dataclass
class Case:
    world: World
    request: ReencryptRequest
    ledger: str | None  # the receipt's refusal code prefix; None: the ledger granted it
    proxies: list[Proxy]


def _honest(world: World, **terms: object) -> tuple[bytes, bytes, str]:
    """A dataset, a grant to GRANTEE with ``terms`` and one committed request: (grant id, tx, error)."""
    grant = world.grant(world.put(), **terms)  # type: ignore[arg-type]
    purpose = str(terms.get("purpose", "loan"))
    tx, receipt = world.commit(GRANTEE, AccessRequest(grant.grant_id, purpose))
    return grant.grant_id, tx.hash, receipt.error


def _case(world: World, grant_id: bytes, tx: bytes, error: str, signer: Identity = GRANTEE) -> Case:
    request = ReencryptRequest.sign(signer.signer, CHAIN, grant_id, tx)
    return Case(world, request, error.split(":", maxsplit=1)[0] or None, proxies())


def honest() -> Case:
    world = new_world()
    return _case(world, *_honest(world))


def no_grant() -> Case:
    world = new_world()
    missing = bytes(32)
    tx, receipt = world.commit(GRANTEE, AccessRequest(missing, "loan"))
    return _case(world, missing, tx.hash, receipt.error)


def revoked() -> Case:
    world = new_world()
    grant = world.grant(world.put())
    world.commit(OWNER, AccessRevoke(grant.grant_id))
    tx, receipt = world.commit(GRANTEE, AccessRequest(grant.grant_id, "loan"))
    return _case(world, grant.grant_id, tx.hash, receipt.error)


def revoked_after_the_request() -> Case:
    world = new_world()
    grant_id, tx, error = _honest(world)
    world.commit(OWNER, AccessRevoke(grant_id))
    return _case(world, grant_id, tx, error)


def expired() -> Case:
    world = new_world()
    grant = world.grant(world.put(), expires_at_ms=world.now_ms + 500)
    tx, receipt = world.commit(GRANTEE, AccessRequest(grant.grant_id, "loan"))
    return _case(world, grant.grant_id, tx.hash, receipt.error)


def used_up() -> Case:
    world = new_world()
    grant_id, _, _ = _honest(world, max_uses=1, purpose="loan")
    tx, receipt = world.commit(GRANTEE, AccessRequest(grant_id, "loan"))
    return _case(world, grant_id, tx.hash, receipt.error)


def wrong_grantee() -> Case:
    world = new_world()
    grant = world.grant(world.put())
    tx, receipt = world.commit(STRANGER, AccessRequest(grant.grant_id, "loan"))
    return _case(world, grant.grant_id, tx.hash, receipt.error, signer=STRANGER)


def wrong_grantee_countersigned() -> Case:
    """The stranger's refused request, with the real grantee signing the re-encryption request."""
    world = new_world()
    grant = world.grant(world.put())
    tx, receipt = world.commit(STRANGER, AccessRequest(grant.grant_id, "loan"))
    return _case(world, grant.grant_id, tx.hash, receipt.error)


def wrong_purpose() -> Case:
    world = new_world()
    grant = world.grant(world.put(), purpose="mortgage")
    tx, receipt = world.commit(GRANTEE, AccessRequest(grant.grant_id, "marketing-resale"))
    return _case(world, grant.grant_id, tx.hash, receipt.error)


def forged_request() -> Case:
    world = new_world()
    return _case(world, *_honest(world), signer=STRANGER)


def signed_for_another_request() -> Case:
    world = new_world()
    grant_id, first, error = _honest(world)
    second, _ = world.commit(GRANTEE, AccessRequest(grant_id, "loan"))
    case = _case(world, grant_id, first, error)
    # The grantee's signature over her first request, presented with her second one.
    case.request = replace(case.request, request_tx=second.hash)
    return case


def replayed_request() -> Case:
    """The same committed request asked again of proxies that served it once."""
    case = honest()
    for proxy in case.proxies:
        assert case.world.answer(proxy, case.request).served
    return case


def window_closed() -> Case:
    world = new_world()
    grant_id, tx, error = _honest(world)
    for _ in range(SERVE_WINDOW_MS // 1000 + 1):  # one block per second of block time
        world.chain.next_block([])
    return _case(world, grant_id, tx, error)


def grant_by_a_non_owner() -> Case:
    world = new_world()
    dataset = world.put()
    body = world.grant(dataset).grant  # the owner's own grant body, resubmitted by the grantee
    tx, receipt = world.commit(GRANTEE, body)
    assert not receipt.ok and "only the dataset owner" in receipt.error
    request_tx, r = world.commit(GRANTEE, AccessRequest(grant_id_of(tx), "loan"))
    return _case(world, grant_id_of(tx), request_tx.hash, r.error)


def grant_of_a_missing_dataset() -> Case:
    world = new_world()
    body = replace(world.grant(world.put()).grant, dataset_id=bytes(32))
    tx, receipt = world.commit(OWNER, body)
    assert not receipt.ok and receipt.error == "no such dataset"
    request_tx, r = world.commit(GRANTEE, AccessRequest(grant_id_of(tx), "loan"))
    return _case(world, grant_id_of(tx), request_tx.hash, r.error)


def _race(request_first: bool) -> Case:
    world = new_world()
    grant = world.grant(world.put())
    nonces = world.nonces
    request = Transaction.create(
        GRANTEE.signer,
        CHAIN,
        nonces.get(GRANTEE.signer.public_key, 0) + 1,
        AccessRequest(grant.grant_id, "loan"),
    )
    revoke = Transaction.create(
        OWNER.signer, CHAIN, nonces[OWNER.signer.public_key] + 1, AccessRevoke(grant.grant_id)
    )
    nonces[GRANTEE.signer.public_key] = request.nonce
    nonces[OWNER.signer.public_key] = revoke.nonce
    _, result = world.chain.next_block([request, revoke] if request_first else [revoke, request])
    error = result.receipts[0 if request_first else 1].error
    return _case(world, grant.grant_id, request.hash, error)


def request_then_revoke_in_one_block() -> Case:
    return _race(request_first=True)


def revoke_then_request_in_one_block() -> Case:
    return _race(request_first=False)


# (situation, what the ledger's receipt says, what every proxy answers)
MATRIX: list[tuple[Callable[[], Case], str | None, Refusal | None]] = [
    (honest, None, None),
    (no_grant, "no such grant", Refusal.NO_GRANT),
    (revoked, "revoked", Refusal.REVOKED),
    (revoked_after_the_request, None, Refusal.REVOKED),
    (expired, "expired", Refusal.EXPIRED),
    (used_up, "used-up", Refusal.USED_UP),
    (wrong_grantee, "wrong-grantee", Refusal.BAD_SIGNATURE),
    (wrong_grantee_countersigned, "wrong-grantee", Refusal.WRONG_GRANTEE),
    (wrong_purpose, "wrong-purpose", Refusal.WRONG_PURPOSE),
    (forged_request, None, Refusal.BAD_SIGNATURE),
    (signed_for_another_request, None, Refusal.BAD_SIGNATURE),
    (replayed_request, None, Refusal.ALREADY_SERVED),
    (window_closed, None, Refusal.WINDOW_CLOSED),
    (grant_by_a_non_owner, "no such grant", Refusal.NO_GRANT),
    (grant_of_a_missing_dataset, "no such grant", Refusal.NO_GRANT),
    (request_then_revoke_in_one_block, None, Refusal.REVOKED),
    (revoke_then_request_in_one_block, "revoked", Refusal.REVOKED),
]


@pytest.mark.parametrize(("situation", "ledger", "proxy"), MATRIX, ids=[m[0].__name__ for m in MATRIX])
def test_access_matrix(situation: Callable[[], Case], ledger: str | None, proxy: Refusal | None) -> None:
    case = situation()
    assert case.ledger == ledger
    answers = [case.world.answer(p, case.request) for p in case.proxies]
    if proxy is None:
        assert all(a.served for a in answers)
    else:
        assert {a.refusal for a in answers} == {proxy.value}
        assert not any(a.cfrag for a in answers)


def test_a_replayed_access_request_transaction_is_not_includable() -> None:
    """Replaying the committed access.request itself (same bytes) spends nothing: its nonce is used."""
    world = new_world()
    grant = world.grant(world.put())
    tx, _ = world.commit(GRANTEE, AccessRequest(grant.grant_id, "loan"))
    with pytest.raises(BlockError, match="nonce"):
        world.chain.next_block([tx])
