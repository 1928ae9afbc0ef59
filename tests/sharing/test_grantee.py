"""The grantee: any t of n fragments open the key, lying proxies are caught, the data opens."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from p2pcity.chain.entries import GrantEntry
from p2pcity.sharing.datakey import SharingError
from p2pcity.sharing.envelope import EnvelopeError
from p2pcity.sharing.grantee import open_dataset, recover_data_key
from p2pcity.sharing.proxy import Proxy
from tests.factories import CHAIN, identities

from .builders import GRANTEE, STRANGER, VALIDATORS, Dataset, World, new_world


def cfrags_for(world: World, dataset: Dataset, **grant_options: Any) -> tuple[GrantEntry, list[bytes]]:
    grant = world.grant(dataset, **grant_options)
    tx, _ = world.request(grant)
    request = world.ask(grant, tx)
    responses = [Proxy(v, CHAIN).answer(request, world.state, world.committed_ms) for v in VALIDATORS]
    assert all(r.served for r in responses)
    return grant, [r.cfrag for r in responses]


def corrupt(cfrag: bytes) -> bytes:
    damaged = bytearray(cfrag)
    damaged[-70] ^= 0x01  # inside the proof's z: decodes fine, fails the proof
    return bytes(damaged)


def test_any_threshold_of_n_fragments_open_the_data() -> None:
    world = new_world()
    dataset = world.put(plaintext=b"deed of parcel 7" * 100)
    grant, cfrags = cfrags_for(world, dataset)
    for subset in itertools.combinations(cfrags, 2):
        recovered = recover_data_key(GRANTEE, dataset.entry, grant, subset)
        assert recovered.data_key == dataset.data_key and not recovered.rejected
    plaintext = b"".join(open_dataset(dataset.entry, dataset.data_key, [dataset.ciphertext]))
    assert plaintext == dataset.plaintext


def test_seven_proxies_threshold_three() -> None:
    seven = identities(7, seed=40)
    world = new_world(seven)
    dataset = world.put()
    grant = world.grant(dataset)
    tx, _ = world.request(grant)
    cfrags = [
        Proxy(v, CHAIN).answer(world.ask(grant, tx), world.state, world.committed_ms).cfrag for v in seven
    ]
    for subset in [cfrags[:3], cfrags[4:], cfrags[::3]]:
        assert recover_data_key(GRANTEE, dataset.entry, grant, subset).data_key == dataset.data_key


def test_a_lying_proxy_is_detected_and_another_used() -> None:
    world = new_world()
    dataset = world.put()
    grant, cfrags = cfrags_for(world, dataset)
    # A fragment from another grant (valid elsewhere) and a corrupted one, then two honest ones.
    _, foreign = cfrags_for(world, world.put())
    lying = [foreign[0], corrupt(cfrags[0]), cfrags[1], cfrags[2]]
    recovered = recover_data_key(GRANTEE, dataset.entry, grant, lying)
    assert recovered.data_key == dataset.data_key
    assert len(recovered.rejected) == 2


def test_fewer_than_threshold_valid_fragments_is_a_clear_error() -> None:
    world = new_world()
    dataset = world.put()
    grant, cfrags = cfrags_for(world, dataset)
    with pytest.raises(SharingError, match="1 valid capsule fragments, 2 needed"):
        recover_data_key(GRANTEE, dataset.entry, grant, [cfrags[0]])
    # The same fragment twice is still one.
    with pytest.raises(SharingError, match="1 valid capsule fragments, 2 needed"):
        recover_data_key(GRANTEE, dataset.entry, grant, [cfrags[0], cfrags[0]])
    with pytest.raises(SharingError, match="1 rejected"):
        recover_data_key(GRANTEE, dataset.entry, grant, [cfrags[0], corrupt(cfrags[1])])


def test_someone_else_cannot_use_the_grantees_fragments() -> None:
    world = new_world()
    dataset = world.put()
    grant, cfrags = cfrags_for(world, dataset)
    with pytest.raises(SharingError, match="another grantee"):
        recover_data_key(STRANGER, dataset.entry, grant, cfrags)


def test_tampered_ciphertext_does_not_open() -> None:
    world = new_world()
    dataset = world.put(plaintext=bytes(500))
    damaged = bytearray(dataset.ciphertext)
    damaged[-1] ^= 1
    with pytest.raises(EnvelopeError):
        b"".join(open_dataset(dataset.entry, dataset.data_key, [bytes(damaged)]))
