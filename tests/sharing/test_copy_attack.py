"""Issue 10's attack, from the grantee's side, on the real ledger and the real proxies.

A revoked (expired, used-up) grantee copies the owner's public on-chain
fields into a dataset of her own and grants herself access, reusing the
owner's sealed key fragments and verifying key. She must obtain no capsule
fragment: the ledger refuses the copies, and a proxy refuses any grant its
fragment was not sealed for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from p2pcity.chain import queries
from p2pcity.chain.entries import GrantEntry
from p2pcity.chain.handlers import dataset_id_of, grant_id_of
from p2pcity.crypto.keys import Identity
from p2pcity.types.tx import AccessRequest, Transaction

from .builders import GRANTEE, Dataset, World, new_world, proxies


def cfrags_obtained(world: World, grant: GrantEntry, who: Identity = GRANTEE, purpose: str = "") -> int:
    """What the attacker gets: she requests on chain, then asks every proxy."""
    tx, _ = world.commit(who, AccessRequest(grant.grant_id, purpose))
    request = world.ask(grant, tx.hash, signer=who)
    return sum(world.answer(p, request).served for p in proxies())


def lose_access(world: World, dataset: Dataset, how: str) -> GrantEntry:
    """A grant the grantee used once, then lost: revoked, expired or used up."""
    if how == "expired":
        grant = world.grant(dataset, expires_at_ms=world.now_ms + 1500)
    else:
        grant = world.grant(dataset, max_uses=1 if how == "used-up" else 0)
    assert cfrags_obtained(world, grant) == 4  # the honest use works
    if how == "revoked":
        world.revoke(grant)
    assert cfrags_obtained(world, grant) == 0
    return grant


def try_commit(world: World, who: Identity, body: Any) -> Transaction | None:
    tx, receipt = world.commit(who, body)
    return tx if receipt.ok else None


@pytest.mark.parametrize("how", ["revoked", "expired", "used-up"])
def test_a_grantee_who_lost_access_cannot_copy_the_dataset_and_grant_herself(how: str) -> None:
    world = new_world()
    dataset = world.put()
    lost = lose_access(world, dataset, how)

    # Copy every public field of the owner's dataset into a dataset of her own.
    copy_tx = try_commit(world, GRANTEE, replace(dataset.entry.dataset))
    if copy_tx is None:
        return  # the ledger refused the copy: nothing to grant herself
    copy = queries.dataset(world.state, dataset_id_of(copy_tx))
    assert copy is not None
    # Grant herself the copy, reusing the owner's sealed fragments and verifying key, no limits.
    body = replace(lost.grant, dataset_id=copy.dataset_id, expires_at_ms=0, max_uses=0, purpose="")
    grant_tx = try_commit(world, GRANTEE, body)
    if grant_tx is None:
        return
    self_grant = queries.grant(world.state, grant_id_of(grant_tx))
    assert self_grant is not None
    assert cfrags_obtained(world, self_grant) == 0
