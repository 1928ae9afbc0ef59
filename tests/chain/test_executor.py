"""The ledger state machine: nonces, records, district changes, grants, determinism."""

from __future__ import annotations

import pytest

from p2pcity.chain import queries
from p2pcity.chain.executor import BlockError, check_block, execute, select
from p2pcity.chain.handlers import dataset_id_of, grant_id_of
from p2pcity.chain.state import MemoryState
from p2pcity.crypto.keys import Identity
from p2pcity.sharing.datakey import dataset_body, kfrag_signer
from p2pcity.types.block_time import block_time_error
from p2pcity.types.tx import (
    AccessGrant,
    AccessRequest,
    AccessRevoke,
    District,
    DistrictChange,
    SealedKeyFrag,
    Transaction,
)
from tests.factories import CHAIN, ChainBuilder, approve, genesis_for, identities, record_tx
from tests.sim import builders

VALIDATORS = identities(4)
CITIZEN, BANK, COURT, NEWCOMER = identities(4, seed=7)


def fresh() -> ChainBuilder:
    return ChainBuilder(VALIDATORS, genesis_for(VALIDATORS))


def test_records_are_versioned_and_never_silently_overwritten() -> None:
    chain = fresh()
    _, result = chain.next_block([record_tx(CITIZEN, 1, "land/parcel-7")])
    assert result.receipts[0].ok
    _, result = chain.next_block([record_tx(CITIZEN, 2, "land/parcel-7", version=1)])
    assert not result.receipts[0].ok and "version 1" in result.receipts[0].error
    _, result = chain.next_block([record_tx(CITIZEN, 3, "land/parcel-7", version=2)])
    assert result.receipts[0].ok
    entry = queries.record(chain.state, "land/parcel-7")
    assert entry is not None and entry.version == 2 and entry.height == 3
    assert queries.record(chain.state, "land/parcel-7", version=1) is not None


def test_namespace_belongs_to_its_first_writer() -> None:
    chain = fresh()
    chain.next_block([record_tx(CITIZEN, 1, "land/parcel-7")])
    _, result = chain.next_block([record_tx(BANK, 1, "land/parcel-8")])
    assert not result.receipts[0].ok and "belongs to another account" in result.receipts[0].error


def test_replayed_or_skipped_nonce_makes_the_block_invalid() -> None:
    chain = fresh()
    tx = record_tx(CITIZEN, 1, "land/a")
    chain.next_block([tx])
    parent = chain.blocks[-1]
    for bad in ([tx], [record_tx(CITIZEN, 3, "land/b")], [record_tx(CITIZEN, 2, "land/b")] * 2):
        with pytest.raises(BlockError):
            execute(chain.state, parent.header.state_root, CHAIN, 2, 5, bad)


def test_select_drops_what_cannot_be_included_and_keeps_order() -> None:
    chain = fresh()
    txs = [record_tx(CITIZEN, 2, "land/b"), record_tx(CITIZEN, 1, "land/a"), record_tx(BANK, 1, "bank/x")]
    chosen, dropped = select(chain.state, CHAIN, txs, limit=10)
    assert [t.nonce for t in chosen] == [1, 1]
    assert dropped[0][0].nonce == 2 and "nonce" in dropped[0][1]
    wrong_chain = record_tx(COURT, 1, "court/x", chain_id="other")
    chosen, dropped = select(chain.state, CHAIN, [wrong_chain], limit=10)
    assert not chosen and "chain" in dropped[0][1]


def _add_newcomer(
    set_version: int, approvers: list, action: str = "add", role: str = "validator"
) -> Transaction:
    district = District("newcomer", NEWCOMER.signer.public_key, NEWCOMER.public.pre_key, "peer-n", role)
    change = approve(DistrictChange(action, district, set_version, ()), approvers)
    return Transaction.create(VALIDATORS[0].signer, CHAIN, 1, change)


def test_district_change_needs_a_quorum_of_current_validators() -> None:
    chain = fresh()  # n = 4, f = 1, quorum = 3
    _, result = chain.next_block([_add_newcomer(0, VALIDATORS[:2])])
    assert not result.receipts[0].ok and "3 needed" in result.receipts[0].error
    chain2 = fresh()
    outsiders_too = [*VALIDATORS[:2], CITIZEN, BANK]
    _, result = chain2.next_block([_add_newcomer(0, outsiders_too)])
    assert not result.receipts[0].ok
    chain3 = fresh()
    _, result = chain3.next_block([_add_newcomer(0, VALIDATORS[:3])])
    assert result.receipts[0].ok
    vset = queries.validator_set(chain3.state)
    assert vset.version == 1 and NEWCOMER.signer.public_key in vset.validators


def test_approvals_for_an_old_set_version_cannot_be_replayed() -> None:
    chain = fresh()
    stale = _add_newcomer(1, VALIDATORS[:3])
    _, result = chain.next_block([stale])
    assert not result.receipts[0].ok and "validator set" in result.receipts[0].error


def test_removal_and_never_the_last_validator() -> None:
    solo = identities(1, seed=3)
    chain = ChainBuilder(solo, genesis_for(solo))
    d = District("district-0", solo[0].signer.public_key, solo[0].public.pre_key, "peer-0", "validator")
    change = approve(DistrictChange("remove", d, 0, ()), solo)
    _, result = chain.next_block([Transaction.create(solo[0].signer, CHAIN, 1, change)])
    assert not result.receipts[0].ok and "last validator" in result.receipts[0].error


def _register(chain: ChainBuilder, who: Identity, nonce: int) -> Transaction:
    body = dataset_body(
        who, CHAIN, bytes(32), bytes([nonce]) * 32, 100, "deed", schema="pdf", holders=("peer-0",)
    )
    reg = Transaction.create(who.signer, CHAIN, nonce, body)
    _, result = chain.next_block([reg])
    assert result.receipts[0].ok, result.receipts[0].error
    return reg


def _grant(
    who: Identity, nonce: int, dataset_id: bytes, kfrags: tuple[SealedKeyFrag, ...], max_uses: int = 0
) -> Transaction:
    body = AccessGrant(
        dataset_id,
        BANK.signer.public_key,
        BANK.public.pre_key,
        kfrag_signer(CITIZEN).verifying_key().to_bytes(),
        2,
        kfrags,
        0,
        max_uses,
        "mortgage" if max_uses else "",
    )
    return Transaction.create(who.signer, CHAIN, nonce, body)


def _kfrags(validators: list[Identity]) -> tuple[SealedKeyFrag, ...]:
    return tuple(SealedKeyFrag(v.signer.public_key, v.public.pre_key, b"kfrag") for v in validators)


def _grant_flow(chain: ChainBuilder, max_uses: int = 0) -> tuple[bytes, bytes]:
    dataset_id = dataset_id_of(_register(chain, CITIZEN, 1))
    grant = _grant(CITIZEN, 2, dataset_id, _kfrags(VALIDATORS), max_uses)
    _, result = chain.next_block([grant])
    assert result.receipts[0].ok, result.receipts[0].error
    return dataset_id, grant_id_of(grant)


def test_access_requests_are_audited_and_refused_after_revoke() -> None:
    chain = fresh()
    dataset_id, grant_id = _grant_flow(chain)
    _, result = chain.next_block([Transaction.create(BANK.signer, CHAIN, 1, AccessRequest(grant_id, "loan"))])
    assert result.receipts[0].ok
    _, result = chain.next_block(
        [Transaction.create(COURT.signer, CHAIN, 1, AccessRequest(grant_id, "case"))]
    )
    assert result.receipts[0].error.startswith("wrong-grantee:")
    chain.next_block([Transaction.create(CITIZEN.signer, CHAIN, 3, AccessRevoke(grant_id))])
    _, result = chain.next_block([Transaction.create(BANK.signer, CHAIN, 2, AccessRequest(grant_id, "loan"))])
    assert "revoked" in result.receipts[0].error
    log = queries.audit_log(chain.state, dataset_id)
    # The audit log holds the refusal codes themselves: readers match codes, not text.
    assert [(e.granted, e.reason) for e in log] == [(True, ""), (False, "wrong-grantee"), (False, "revoked")]


def test_grant_uses_run_out() -> None:
    chain = fresh()
    _, grant_id = _grant_flow(chain, max_uses=1)
    chain.next_block([Transaction.create(BANK.signer, CHAIN, 1, AccessRequest(grant_id, "mortgage"))])
    _, result = chain.next_block(
        [Transaction.create(BANK.signer, CHAIN, 2, AccessRequest(grant_id, "mortgage"))]
    )
    assert result.receipts[0].error.startswith("used-up:")


def test_grant_needs_one_fragment_per_validator_and_owner() -> None:
    chain = fresh()
    dataset_id = dataset_id_of(_register(chain, CITIZEN, 1))
    _, result = chain.next_block([_grant(CITIZEN, 2, dataset_id, _kfrags(VALIDATORS[:3]))])
    assert "one key fragment per current validator" in result.receipts[0].error
    _, result = chain.next_block([_grant(BANK, 1, dataset_id, _kfrags(VALIDATORS))])
    assert "only the dataset owner" in result.receipts[0].error


def test_same_blocks_give_same_state_roots_on_independent_states() -> None:
    chain = fresh()
    for i in range(1, 6):
        chain.next_block([record_tx(CITIZEN, i, f"land/p{i}"), record_tx(BANK, i, f"bank/p{i}")])
    replica = MemoryState()
    replica.apply(chain.genesis.state_writes())
    root = chain.blocks[0].header.state_root
    for block in chain.blocks[1:]:
        result = execute(replica, root, CHAIN, block.height, block.header.timestamp_ms, block.txs)
        assert result.state_root == block.header.state_root
        replica.apply(result.writes)
        root = result.state_root
    assert replica.items == chain.state.items


def test_the_ledger_applies_the_one_block_time_rule() -> None:
    """``check_block`` refuses a back-dated block by the rule the consensus core applies
    (types.block_time), not by a weaker copy of its own: the old ledger check (not before the
    parent) let through a block dated before its parent was certified."""
    keys = builders.keys(4)
    b1 = builders.make_block(builders.genesis(), 1, keys, timestamp_ms=10)
    certified_at_500 = builders.qc_for(b1, keys[:3], timestamp_ms=500)
    back_dated = builders.make_block(b1, 2, keys, justify=certified_at_500, timestamp_ms=100)
    assert back_dated.header.timestamp_ms > b1.header.timestamp_ms  # the old check passed it
    reason = block_time_error(back_dated.header, b1.header, None)
    assert reason == "block time before its parent was certified"
    with pytest.raises(BlockError, match=reason):
        check_block(back_dated, b1, builders.CHAIN)
    on_time = builders.make_block(b1, 2, keys, justify=certified_at_500, timestamp_ms=500)
    check_block(on_time, b1, builders.CHAIN)
    same_ms = builders.make_block(b1, 2, keys, timestamp_ms=10)
    with pytest.raises(BlockError, match="not after its parent"):
        check_block(same_ms, b1, builders.CHAIN)
