"""Building grants: thresholds, sealing to each validator, and what the ledger accepts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2pcity.codec import decode
from p2pcity.crypto import umbral
from p2pcity.sharing.datakey import (
    SharingError,
    delegating_key,
    open_as_owner,
    read_capsule,
)
from p2pcity.sharing.grants import build_grant, default_threshold, kfrag_binding, proxy_keys
from p2pcity.types.tx import DataCapsule
from tests.factories import CHAIN, identities

from .builders import GRANTEE, OWNER, STRANGER, VALIDATORS, new_world


@pytest.mark.parametrize(("n", "t"), [(1, 1), (2, 1), (3, 1), (4, 2), (6, 2), (7, 3), (10, 4)])
def test_default_threshold_is_f_plus_one(n: int, t: int) -> None:
    assert default_threshold(n) == t


def test_grant_has_one_sealed_fragment_per_validator_that_only_it_opens() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset, purpose="mortgage", max_uses=3)
    g = grant.grant
    assert g.threshold == 2 and g.max_uses == 3 and g.purpose == "mortgage"
    assert sorted(k.validator for k in g.kfrags) == sorted(v.signer.public_key for v in VALIDATORS)
    opened = read_capsule(dataset.entry.dataset)
    for v in VALIDATORS:
        mine = next(k for k in g.kfrags if k.validator == v.signer.public_key)
        sealed = mine.sealed
        assert mine.pre_key == v.public.pre_key  # labelled with the key it is sealed to
        secret = umbral.SecretKey.from_bytes(v.pre_secret)
        binding = kfrag_binding(CHAIN, g, v.signer.public_key, v.public.pre_key)
        kfrag = umbral.KeyFrag.from_bytes(umbral.decrypt_from(secret, sealed, binding))
        kfrag.verify(
            umbral.PublicKey.from_bytes(g.verifying_key),
            opened.delegating_key,
            umbral.PublicKey.from_bytes(g.grantee_pre_key),
        )
        # Another validator cannot open it.
        other = VALIDATORS[(VALIDATORS.index(v) + 1) % len(VALIDATORS)]
        with pytest.raises(umbral.UmbralError):
            umbral.decrypt_from(umbral.SecretKey.from_bytes(other.pre_secret), sealed, binding)
        # Nor does its own validator with any other binding: no binding, or other terms.
        for terms in (replace(g, max_uses=0), replace(g, purpose=""), replace(g, dataset_id=bytes(32))):
            with pytest.raises(umbral.DecryptionError):
                umbral.decrypt_from(
                    secret, sealed, kfrag_binding(CHAIN, terms, v.signer.public_key, v.public.pre_key)
                )
        with pytest.raises(umbral.DecryptionError):
            umbral.decrypt_from(secret, sealed)


def test_seven_validators_threshold_three_and_explicit_threshold() -> None:
    seven = identities(7, seed=40)
    world = new_world(seven)
    dataset = world.put()
    assert world.grant(dataset).grant.threshold == 3
    assert world.grant(dataset, threshold=7).grant.threshold == 7
    with pytest.raises(SharingError, match=r"threshold 8 outside 3\.\.7"):
        world.grant(dataset, threshold=8)
    # Fewer than f + 1: f faulty proxies could serve a revoked grant alone.
    with pytest.raises(SharingError, match=r"threshold 2 outside 3\.\.7"):
        world.grant(dataset, threshold=2)


def test_the_ledger_refuses_a_threshold_of_f_or_less() -> None:
    world = new_world()
    dataset = world.put()
    body = build_grant(OWNER, CHAIN, dataset.entry, GRANTEE.public, proxy_keys(world.state))
    _, receipt = world.commit(OWNER, replace(body, threshold=1))
    assert not receipt.ok and "threshold 1 outside 2..4" in receipt.error


def test_only_the_owner_can_build_a_grant() -> None:
    world = new_world()
    dataset = world.put()
    with pytest.raises(SharingError, match="only the dataset's owner"):
        build_grant(STRANGER, CHAIN, dataset.entry, GRANTEE.public, proxy_keys(world.state))


def test_ledger_refuses_a_grant_missing_a_validator() -> None:
    world = new_world()
    dataset = world.put()
    keys = proxy_keys(world.state)
    keys.pop(next(iter(keys)))
    _, receipt = world.commit(OWNER, build_grant(OWNER, CHAIN, dataset.entry, GRANTEE.public, keys))
    assert not receipt.ok and "one key fragment per current validator" in receipt.error


def test_the_delegating_key_is_per_dataset_and_never_the_identity_key() -> None:
    world = new_world()
    a, b = world.put(), world.put()
    key_a, key_b = (read_capsule(d.entry.dataset).delegating_key.to_bytes() for d in (a, b))
    assert key_a != key_b
    assert OWNER.public.pre_key not in (key_a, key_b)
    assert delegating_key(OWNER, a.entry.dataset.ciphertext_hash).public_key().to_bytes() == key_a
    field = decode(DataCapsule, a.entry.dataset.capsule)
    assert len(a.entry.dataset.capsule) == 136 and field.delegating_key == key_a
    assert open_as_owner(OWNER, a.entry.dataset) == a.data_key
    with pytest.raises(SharingError, match="did not seal"):
        open_as_owner(STRANGER, a.entry.dataset)
