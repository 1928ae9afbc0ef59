"""Planted-bug controls: each defence removed on purpose, and the attacker's test that notices.

Every control plants one bug with ``monkeypatch`` (the rest of the ledger
and proxies stay real) and asserts that the attack of the matching test in
``test_copy_attack`` / ``test_access_matrix`` then *succeeds*: proof that
those tests can fail, and which defence each one rests on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from p2pcity.chain import handlers
from p2pcity.chain.access import Refusal, grant_refusal
from p2pcity.chain.entries import DatasetEntry, GrantEntry
from p2pcity.chain.handlers import TxContext, dataset_id_of, grant_id_of
from p2pcity.chain.state import Overlay, dataset_key, grant_key
from p2pcity.codec import decode, encode
from p2pcity.crypto import umbral
from p2pcity.sharing import grants as grants_module
from p2pcity.sharing import proxy as proxy_module
from p2pcity.sharing.datakey import kfrag_signer, owner_delegating_key
from p2pcity.sharing.grantee import recover_data_key
from p2pcity.sharing.grants import build_grant, proxy_keys
from p2pcity.sharing.proxy import Proxy
from p2pcity.types.tx import AccessGrant, AccessRequest, AccessRevoke, DatasetRegister

from . import test_access_matrix as matrix
from .builders import GRANTEE, OWNER, VALIDATORS, World, new_world, proxies
from .test_copy_attack import lose_access, try_commit


def _unchecked_register(state: Overlay, ctx: TxContext, reg: DatasetRegister) -> None:
    """The pre-issue-10 handler: any capsule, no proof, no uniqueness."""
    dataset_id = dataset_id_of(ctx.tx)
    tx = ctx.tx
    entry = DatasetEntry(dataset_id, tx.sender, reg, ctx.height, 0, tx.nonce, tx.signature)
    state.put(dataset_key(dataset_id), encode(entry))


def _unbound(*_: object) -> bytes:
    return b""


def copy_attack(world: World) -> tuple[int, list[str]]:
    """The issue's attack after a revoke: (capsule fragments she gets, proxies' refusal codes)."""
    dataset = world.put()
    lost = lose_access(world, dataset, "revoked")
    copy_tx = try_commit(world, GRANTEE, replace(dataset.entry.dataset))
    if copy_tx is None:
        return 0, ["ledger refused the copy"]
    body = replace(lost.grant, dataset_id=dataset_id_of(copy_tx), expires_at_ms=0, max_uses=0, purpose="")
    grant_tx = try_commit(world, GRANTEE, body)
    assert grant_tx is not None
    self_grant = world.state.state_get(grant_key(grant_id_of(grant_tx)))
    assert self_grant is not None
    entry = decode(GrantEntry, self_grant)
    tx, _ = world.commit(GRANTEE, AccessRequest(entry.grant_id, ""))
    answers = [world.answer(p, world.ask(entry, tx.hash)) for p in proxies()]
    return sum(a.served for a in answers), sorted({a.refusal for a in answers if not a.served})


def test_real_code_two_layers_stop_the_copy_attack() -> None:
    assert copy_attack(new_world()) == (0, ["ledger refused the copy"])


def test_without_the_possession_check_the_aad_binding_still_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handlers.HANDLERS, DatasetRegister, _unchecked_register)
    # The copy is on chain and so is the self-grant: only the fragments' binding holds.
    assert copy_attack(new_world()) == (0, [Refusal.BAD_KFRAG.value])


def test_without_possession_check_and_aad_binding_the_attack_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(handlers.HANDLERS, DatasetRegister, _unchecked_register)
    monkeypatch.setattr(grants_module, "kfrag_binding", _unbound)
    monkeypatch.setattr(proxy_module, "kfrag_binding", _unbound)
    served, _ = copy_attack(new_world())
    assert served == len(VALIDATORS)  # today's code: the test in test_copy_attack fails


def test_without_the_purpose_rule_a_wrong_purpose_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    def ignore_purpose(entry: GrantEntry, grantee: bytes, purpose: str, at_ms: int, **kw: Any) -> Any:
        return grant_refusal(entry, grantee, entry.grant.purpose, at_ms, **kw)

    monkeypatch.setattr(handlers, "grant_refusal", ignore_purpose)
    monkeypatch.setattr(proxy_module, "grant_refusal", ignore_purpose)
    case = matrix.wrong_purpose()
    assert case.ledger is None
    assert all(case.world.answer(p, case.request).served for p in case.proxies)


def test_without_the_served_log_a_replayed_request_is_served_again() -> None:
    class Forgetful:
        def served(self, request_tx: bytes) -> bool:
            return False

        def mark(self, request_tx: bytes) -> None:
            pass

    case = matrix.honest()
    forgetful = [Proxy(v, case.world.chain.genesis.chain_id, served=Forgetful()) for v in VALIDATORS]
    for proxy in forgetful:
        assert case.world.answer(proxy, case.request).served
    assert all(case.world.answer(p, case.request).served for p in forgetful)


def test_without_the_window_an_old_request_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy_module, "SERVE_WINDOW_MS", 2**62)
    case = matrix.window_closed()
    assert all(case.world.answer(p, case.request).served for p in case.proxies)


def _all_sealed_to(world: World, dataset: Any, target: int) -> AccessGrant:
    """What a node lying about every validator's PRE key makes the owner build: all to its key."""
    keys = proxy_keys(world.state)
    liar = VALIDATORS[target].public.pre_key
    return build_grant(
        OWNER, world.chain.genesis.chain_id, dataset.entry, GRANTEE.public, dict.fromkeys(keys, liar)
    )


def one_node_reads_alone(world: World) -> int:
    """A grant sealed all to validator 0's key; after revoke, validator 0 + the grantee try to read."""
    dataset = world.put()
    body = _all_sealed_to(world, dataset, 0)
    tx, receipt = world.commit(OWNER, body)
    if not receipt.ok:
        return 0
    world.commit(OWNER, AccessRevoke(grant_id_of(tx)))
    entry = decode(GrantEntry, world.state.state_get(grant_key(grant_id_of(tx))) or b"")
    # Validator 0 opens every fragment (all sealed to it) and re-encrypts for the grantee itself.
    secret = umbral.SecretKey.from_bytes(VALIDATORS[0].pre_secret)
    delegating = owner_delegating_key(OWNER, dataset.entry.dataset).public_key()
    capsule = proxy_module.read_capsule(dataset.entry.dataset).capsule
    cfrags = []
    for k in entry.grant.kfrags:
        binding = grants_module.kfrag_binding(
            world.chain.genesis.chain_id, entry.grant, k.validator, k.pre_key
        )
        kfrag = umbral.KeyFrag.from_bytes(umbral.decrypt_from(secret, k.sealed, binding)).verify(
            kfrag_signer(OWNER).verifying_key(),
            delegating,
            umbral.PublicKey.from_bytes(GRANTEE.public.pre_key),
        )
        cfrags.append(umbral.reencrypt(capsule, kfrag).to_bytes())
    recovered = recover_data_key(GRANTEE, dataset.entry, entry, cfrags)
    assert recovered.data_key == dataset.data_key
    return len(cfrags)


def test_the_ledger_refuses_fragments_not_sealed_to_the_registered_distinct_keys() -> None:
    world = new_world()
    dataset = world.put()
    _, receipt = world.commit(OWNER, _all_sealed_to(world, dataset, 0))
    assert "not sealed to its validator's registered PRE key" in receipt.error
    assert one_node_reads_alone(new_world()) == 0


def _grant_without_key_rules(state: Overlay, ctx: TxContext, grant: AccessGrant) -> None:
    """The grant handler with only the owner rule: the key fragments' labels go unchecked."""
    raw = state.state_get(dataset_key(grant.dataset_id))
    if raw is None or decode(DatasetEntry, raw).owner != ctx.tx.sender:
        raise handlers.Rejected("only the dataset owner can grant access")
    gid = grant_id_of(ctx.tx)
    entry = GrantEntry(gid, ctx.tx.sender, grant, ctx.height, 0, 0, ctx.tx.nonce, ctx.tx.signature)
    state.put(grant_key(gid), encode(entry))


def test_without_the_registered_key_rule_one_node_reads_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handlers.HANDLERS, AccessGrant, _grant_without_key_rules)
    assert one_node_reads_alone(new_world()) == len(VALIDATORS)
