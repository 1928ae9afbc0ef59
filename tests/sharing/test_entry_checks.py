"""A client checks a dataset or grant entry against its id alone: whatever node served it."""

from __future__ import annotations

import os
from dataclasses import replace

from p2pcity.chain.access import dataset_entry_problem, grant_entry_problem, possession_problem
from p2pcity.chain.entries import DatasetEntry
from p2pcity.sharing.datakey import dataset_body
from p2pcity.sharing.envelope import new_data_key
from tests.factories import CHAIN

from .builders import OWNER, STRANGER, new_world


def test_honest_entries_verify_and_every_altered_field_does_not() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset, purpose="mortgage", max_uses=2)
    d, g = dataset.entry, grant
    assert dataset_entry_problem(CHAIN, d.dataset_id, d) is None
    assert grant_entry_problem(CHAIN, g.grant_id, g) is None
    assert dataset_entry_problem("other-city", d.dataset_id, d) is not None
    body = d.dataset
    for altered in (
        replace(body, ciphertext_hash=os.urandom(32)),
        replace(body, sealed_key=os.urandom(len(body.sealed_key))),
        replace(body, size=body.size + 1),
        replace(body, holders=("peer-9",)),
        replace(body, verifying_key=OWNER.public.pre_key),
    ):
        assert dataset_entry_problem(CHAIN, d.dataset_id, replace(d, dataset=altered)) is not None
    assert (
        dataset_entry_problem(CHAIN, d.dataset_id, replace(d, owner=STRANGER.signer.public_key)) is not None
    )
    terms = g.grant
    for changed in (
        replace(terms, max_uses=0),
        replace(terms, purpose=""),
        replace(terms, expires_at_ms=1),
        replace(terms, threshold=1),
        replace(terms, grantee=STRANGER.signer.public_key),
    ):
        assert grant_entry_problem(CHAIN, g.grant_id, replace(g, grant=changed)) is not None
    # Revocation and uses are state, not signed (issue 13 proves them).
    assert grant_entry_problem(CHAIN, g.grant_id, replace(g, revoked_height=0, uses=0)) is None


def test_a_fabricated_entry_with_valid_possession_proofs_does_not_verify() -> None:
    """A liar makes its own capsule and proofs and claims the owner and the id: no owner signature."""
    world = new_world()
    real = world.put().entry
    fake_body = dataset_body(STRANGER, CHAIN, new_data_key(), os.urandom(32), 10, "fake")
    fake = DatasetEntry(
        real.dataset_id, STRANGER.signer.public_key, fake_body, 1, 0, real.nonce, real.signature
    )
    assert dataset_entry_problem(CHAIN, real.dataset_id, fake) is not None
    # Its proofs of possession are valid (it holds its own keys): they alone would not catch it.
    assert possession_problem(CHAIN, STRANGER.signer.public_key, fake_body) is None
