"""Grants across validator-set changes: retired proxies refuse, the owner regrants (issue 11).

A real in-memory ledger (``builders.World``): district changes approved by the
current validators, real proxies answering against the committed state, the
grantee's own verification and combination. No processes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from p2pcity.chain import queries
from p2pcity.chain.access import Refusal, fragments_of, proxy_health
from p2pcity.chain.executor import BlockError
from p2pcity.codec import encode
from p2pcity.crypto.keys import Identity
from p2pcity.sharing.datakey import SharingError
from p2pcity.sharing.grantee import recover_data_key
from p2pcity.sharing.grants import build_regrant, proxy_keys
from p2pcity.sharing.proxy import Proxy
from p2pcity.types.tx import AccessRegrant, District, DistrictChange
from tests.factories import CHAIN, approve, identities

from .builders import GRANTEE, OWNER, STRANGER, VALIDATORS, Dataset, World, new_world

NEWCOMERS = identities(3, seed=40)


def _district(who: Identity, name: str) -> District:
    return District(name, who.signer.public_key, who.public.pre_key, f"peer-{name}", "validator")


def change(world: World, action: str, who: Identity, name: str) -> None:
    """Commit a district change approved by every current validator."""
    vset = queries.validator_set(world.state)
    current = [v for v in (*VALIDATORS, *NEWCOMERS) if v.signer.public_key in vset.validators]
    body = approve(DistrictChange(action, _district(who, name), vset.version, ()), current)
    _, receipt = world.commit(current[0], body)
    assert receipt.ok, receipt.error


def regrant_body(world: World, dataset: Dataset, grant_id: bytes, owner: Identity = OWNER) -> AccessRegrant:
    entry = queries.grant(world.state, grant_id)
    assert entry is not None
    version = queries.validator_set(world.state).version
    return build_regrant(owner, CHAIN, dataset.entry, entry, proxy_keys(world.state), version)


def served(world: World, grant_id: bytes, request_tx: bytes, who: list[Identity]) -> dict[str, bytes | str]:
    """Each proxy's answer: its capsule fragment, or its refusal code."""
    entry = queries.grant(world.state, grant_id)
    assert entry is not None
    out: dict[str, bytes | str] = {}
    for v in who:
        reply = world.answer(Proxy(v, CHAIN), world.ask(entry, request_tx))
        out[v.signer.public_key.hex()[:8]] = reply.cfrag if reply.served else reply.refusal
    return out


def open_with(world: World, dataset: Dataset, grant_id: bytes, cfrags: list[bytes]) -> bytes:
    entry = queries.grant(world.state, grant_id)
    assert entry is not None
    fragments = fragments_of(entry, queries.fragments(world.state, grant_id))
    return recover_data_key(GRANTEE, dataset.entry, entry, cfrags, fragments.threshold).data_key


def _replace_the_set(world: World) -> None:
    """Three newcomers in, three genesis validators out: only VALIDATORS[0] stays."""
    for i, who in enumerate(NEWCOMERS):
        change(world, "add", who, f"new-{i}")
    for i, who in enumerate(VALIDATORS[1:], start=1):
        change(world, "remove", who, f"district-{i}")


def test_a_removed_validator_refuses_with_the_retired_code_and_the_rest_still_serve() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    tx, receipt = world.request(grant)
    assert receipt.ok
    answers = served(world, grant.grant_id, tx, VALIDATORS)
    assert answers[VALIDATORS[3].signer.public_key.hex()[:8]] == Refusal.RETIRED.value
    cfrags = [a for a in answers.values() if isinstance(a, bytes)]
    assert len(cfrags) == 3
    assert open_with(world, dataset, grant.grant_id, cfrags) == dataset.data_key
    health = proxy_health(fragments_of(grant, None), proxy_keys(world.state))
    assert (health.live, health.total, health.threshold, health.at_risk) == (3, 4, 2, False)


def test_old_fragments_are_not_enough_after_the_set_changed_and_a_regrant_opens_again() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    _replace_the_set(world)
    health = proxy_health(fragments_of(grant, None), proxy_keys(world.state))
    assert (health.live, health.threshold, health.openable) == (1, 2, False)
    assert "regrant" in health.describe()
    # The old grant: the three retired holders refuse; the one left is not the threshold.
    tx, _ = world.request(grant)
    answers = served(world, grant.grant_id, tx, VALIDATORS)
    assert sorted(a for a in answers.values() if isinstance(a, str)) == [Refusal.RETIRED.value] * 3
    with pytest.raises(SharingError, match="1 valid capsule fragments, 2 needed"):
        open_with(world, dataset, grant.grant_id, [a for a in answers.values() if isinstance(a, bytes)])
    # The owner regrants: fragments for the current set, the grant's id and terms unchanged.
    _, receipt = world.commit(OWNER, regrant_body(world, dataset, grant.grant_id))
    assert receipt.ok, receipt.error
    refreshed = queries.fragments(world.state, grant.grant_id)
    assert refreshed is not None
    current = fragments_of(grant, refreshed)
    assert {k.validator for k in current.kfrags} == set(queries.validator_set(world.state).validators)
    assert proxy_health(current, proxy_keys(world.state)).live == 4
    tx, _ = world.request(grant)
    answers = served(world, grant.grant_id, tx, [*VALIDATORS, *NEWCOMERS])
    cfrags = [a for a in answers.values() if isinstance(a, bytes)]
    assert len(cfrags) == 4  # VALIDATORS[0] and the three newcomers
    assert sorted(a for a in answers.values() if isinstance(a, str)) == [Refusal.RETIRED.value] * 3
    assert open_with(world, dataset, grant.grant_id, cfrags) == dataset.data_key


def test_a_cfrag_from_the_old_split_does_not_spoil_the_new_ones() -> None:
    """A retired proxy that still answers from its old fragment (byzantine): verified like the
    others, but of another split; the grantee combines the split that reaches the threshold."""
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    _replace_the_set(world)
    world.commit(OWNER, regrant_body(world, dataset, grant.grant_id))
    tx, _ = world.request(grant)
    answers = served(world, grant.grant_id, tx, [VALIDATORS[0], *NEWCOMERS])
    new = [a for a in answers.values() if isinstance(a, bytes)]
    # The byzantine retired proxy re-encrypts with its old fragment anyway: put first.
    old = _old_split_cfrag(world, dataset, grant.grant_id, tx)
    assert open_with(world, dataset, grant.grant_id, [old, new[0], new[1]]) == dataset.data_key
    with pytest.raises(SharingError, match="different splits"):
        open_with(world, dataset, grant.grant_id, [old, new[0]])


def _old_split_cfrag(world: World, dataset: Dataset, grant_id: bytes, request_tx: bytes) -> bytes:
    from p2pcity.crypto import umbral  # noqa: PLC0415
    from p2pcity.sharing.datakey import read_capsule  # noqa: PLC0415
    from p2pcity.sharing.grants import kfrag_binding  # noqa: PLC0415

    entry = queries.grant(world.state, grant_id)
    assert entry is not None
    me = VALIDATORS[1]
    mine = next(k for k in entry.grant.kfrags if k.validator == me.signer.public_key)
    binding = kfrag_binding(CHAIN, entry.grant, mine.validator, mine.pre_key)
    plain = umbral.decrypt_from(umbral.SecretKey.from_bytes(me.pre_secret), mine.sealed, binding)
    opened = read_capsule(dataset.entry.dataset)
    kfrag = umbral.KeyFrag.from_bytes(plain).verify(
        umbral.PublicKey.from_bytes(entry.grant.verifying_key),
        opened.delegating_key,
        umbral.PublicKey.from_bytes(entry.grant.grantee_pre_key),
    )
    return umbral.reencrypt(opened.capsule, kfrag).to_bytes()


def test_a_regrant_by_anyone_but_the_owner_is_refused() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    body = regrant_body(world, dataset, grant.grant_id)
    for intruder in (STRANGER, GRANTEE, VALIDATORS[0]):
        _, receipt = world.commit(intruder, body)
        assert not receipt.ok and "only the grant's owner" in receipt.error
    with pytest.raises(SharingError, match="only the grant's owner"):
        regrant_body(world, dataset, grant.grant_id, owner=STRANGER)
    assert queries.fragments(world.state, grant.grant_id) is None


def test_a_regrant_replayed_or_held_back_is_refused() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    # Nothing changed yet: nothing to refresh.
    _, receipt = world.commit(OWNER, regrant_body(world, dataset, grant.grant_id))
    assert not receipt.ok and "already those of validator set" in receipt.error
    change(world, "remove", VALIDATORS[3], "district-3")
    body = regrant_body(world, dataset, grant.grant_id)
    tx, receipt = world.commit(OWNER, body)
    assert receipt.ok, receipt.error
    # The very transaction again: its nonce is spent, no block may hold it.
    with pytest.raises(BlockError, match="nonce"):
        world.chain.next_block([tx])
    # The same body under a fresh nonce, in the same set: already refreshed.
    _, receipt = world.commit(OWNER, body)
    assert not receipt.ok and "already those of validator set" in receipt.error
    # A regrant signed for this set, held back and submitted after the next change.
    change(world, "remove", VALIDATORS[2], "district-2")
    held_back(world, dataset, grant.grant_id)


def held_back(world: World, dataset: Dataset, grant_id: bytes) -> str:
    """A regrant made for set N, submitted after a change to N+1 that kept the same members
    (an update of one district): its fragments would fit, only its set version is stale."""
    held = regrant_body(world, dataset, grant_id)
    change(world, "update", VALIDATORS[0], "district-0")
    _, receipt = world.commit(OWNER, held)
    assert not receipt.ok and "is for validator set" in receipt.error, receipt
    return receipt.error


def test_a_regrant_with_fragments_sealed_to_the_wrong_keys_is_refused() -> None:
    """A node lying to the owner about the current validators' PRE keys gets nothing accepted."""
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    entry = queries.grant(world.state, grant.grant_id)
    assert entry is not None
    version = queries.validator_set(world.state).version
    liar = STRANGER.public.pre_key
    keys = {account: liar for account in proxy_keys(world.state)}
    body = build_regrant(OWNER, CHAIN, dataset.entry, entry, keys, version)
    _, receipt = world.commit(OWNER, body)
    assert not receipt.ok and "registered PRE key" in receipt.error
    # Fragments for the old set (the removed validator included) are refused too.
    old_set = {v.signer.public_key: v.public.pre_key for v in VALIDATORS}
    _, receipt = world.commit(OWNER, build_regrant(OWNER, CHAIN, dataset.entry, entry, old_set, version))
    assert not receipt.ok and "one key fragment per current validator" in receipt.error


def test_a_revoked_grant_is_not_revived_by_a_regrant() -> None:
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    body = regrant_body(world, dataset, grant.grant_id)
    world.revoke(grant)
    _, receipt = world.commit(OWNER, body)
    assert not receipt.ok and "revoked" in receipt.error


def test_a_regrant_fragment_does_not_open_with_the_grants_own_binding() -> None:
    """A regrant's sealed fragment is bound to its set: lifted into the grant's own slot (or the
    grant's into a regrant), the proxy cannot open it."""
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    body = regrant_body(world, dataset, grant.grant_id)
    # Forged: the regrant's fragments with the grant's own fragments' seal (set binding gone).
    forged = replace(body, kfrags=tuple(
        k for k in grant.grant.kfrags if k.validator != VALIDATORS[3].signer.public_key
    ))
    _, receipt = world.commit(OWNER, forged)
    assert receipt.ok, receipt.error  # the ledger cannot open seals; the proxies can
    tx, _ = world.request(grant)
    answers = served(world, grant.grant_id, tx, VALIDATORS[:3])
    assert set(answers.values()) == {Refusal.BAD_KFRAG.value}


def test_the_regrant_entry_is_checked_against_the_owners_signature() -> None:
    from p2pcity.chain.access import fragments_entry_problem  # noqa: PLC0415

    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    world.commit(OWNER, regrant_body(world, dataset, grant.grant_id))
    refreshed = queries.fragments(world.state, grant.grant_id)
    assert refreshed is not None
    assert fragments_entry_problem(CHAIN, grant, refreshed) is None
    raised = refreshed.regrant.threshold + 1
    tampered = replace(refreshed, regrant=replace(refreshed.regrant, threshold=raised))
    assert "signature" in (fragments_entry_problem(CHAIN, grant, tampered) or "")
    other = world.grant(dataset)
    assert "another grant" in (fragments_entry_problem(CHAIN, other, refreshed) or "")


# --- planted-bug controls: each defence removed, the attack above then succeeds ----------


class _EveryoneStaysAValidator:
    """``queries`` as a proxy that never learnt of the removals sees it."""

    def __getattr__(self, name: str) -> object:
        return getattr(queries, name)

    @staticmethod
    def validator_set(state: object) -> object:
        vset = queries.validator_set(state)  # type: ignore[arg-type]
        every = {*vset.validators, *(v.signer.public_key for v in VALIDATORS)}
        return replace(vset, validators=tuple(sorted(every)))


def test_control_without_the_retired_rule_old_fragments_of_removed_validators_suffice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from p2pcity.sharing import proxy as proxy_module  # noqa: PLC0415

    monkeypatch.setattr(proxy_module, "queries", _EveryoneStaysAValidator())
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    _replace_the_set(world)
    tx, _ = world.request(grant)
    answers = served(world, grant.grant_id, tx, VALIDATORS)
    cfrags = [a for a in answers.values() if isinstance(a, bytes)]
    assert len(cfrags) == 4  # the removed validators serve: the tests above assert "retired"
    assert open_with(world, dataset, grant.grant_id, cfrags) == dataset.data_key


def test_control_without_the_set_version_rule_a_held_back_regrant_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from p2pcity.chain import handlers  # noqa: PLC0415

    honest = handlers.apply_access_regrant

    def unbound(state: object, ctx: object, regrant: AccessRegrant) -> None:
        current = handlers.validator_set(state).version  # type: ignore[arg-type]
        honest(state, ctx, replace(regrant, set_version=current))  # type: ignore[arg-type]

    monkeypatch.setitem(handlers.HANDLERS, AccessRegrant, unbound)
    world = new_world()
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    with pytest.raises(AssertionError, match="ok=True"):  # the held-back regrant commits
        held_back(world, dataset, grant.grant_id)


async def test_the_nodes_fan_out_reports_retired_proxies_without_asking_them(tmp_path: Path) -> None:
    """``POST /reencrypt``: a holder that is no longer a validator is reported ``retired`` and
    not asked; with fewer live holders than the threshold nobody is asked (409, the code)."""
    from .test_api_routes import node  # noqa: PLC0415

    http, handle = node(tmp_path)
    world = handle.world
    dataset = world.put()
    grant = world.grant(dataset)
    change(world, "remove", VALIDATORS[3], "district-3")
    tx, _ = world.request(grant)
    body = (await http.post("/reencrypt", json={"request": encode(world.ask(grant, tx)).hex()})).json()
    assert body["complete"]
    retired = [f for f in body["failures"] if f["code"] == Refusal.RETIRED.value]
    assert [f["proxy"] for f in retired] == [VALIDATORS[3].signer.public_key.hex()]
    assert handle.proxies["peer-3"].served == 0 and not handle.proxies["peer-3"].refused
    for i in (2, 1):
        change(world, "remove", VALIDATORS[i], f"district-{i}")
    tx, _ = world.request(grant)
    reply = await http.post("/reencrypt", json={"request": encode(world.ask(grant, tx)).hex()})
    assert reply.status_code == 409 and reply.json()["code"] == Refusal.TOO_FEW_PROXIES.value
    assert "regrant" in reply.json()["error"]
