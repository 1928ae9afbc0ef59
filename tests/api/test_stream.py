"""The events a committed block makes, per topic, over a real ledger (the executor on a memory state)."""

from __future__ import annotations

import pytest

from p2pcity.api.stream import Cursor, CursorError, Filter, block_events
from p2pcity.types.tx import AccessRequest, AccessRevoke, Transaction
from tests.chain.test_executor import BANK, CITIZEN, COURT, _grant_flow, fresh
from tests.factories import CHAIN, ChainBuilder, record_tx

START = Cursor(0, 0)


def all_events(chain: ChainBuilder, want: Filter, after: Cursor = START) -> list[tuple[str, str]]:
    out = []
    for block in chain.blocks:
        out += [(str(e.cursor), e.kind) for e in block_events(block, chain.state, want, after)]
    return out


def test_a_datasets_registration_grant_accesses_and_revoke_in_commit_order() -> None:
    chain = fresh()
    dataset_id, grant_id = _grant_flow(chain)
    chain.next_block([Transaction.create(BANK.signer, CHAIN, 1, AccessRequest(grant_id, "loan"))])
    chain.next_block([Transaction.create(COURT.signer, CHAIN, 1, AccessRequest(grant_id, "case"))])
    chain.next_block([Transaction.create(CITIZEN.signer, CHAIN, 3, AccessRevoke(grant_id))])
    chain.next_block([record_tx(CITIZEN, 4, "land/x")])  # not about the dataset
    found = [
        e
        for block in chain.blocks
        for e in block_events(block, chain.state, Filter("dataset", dataset=dataset_id), START)
    ]
    assert [e.kind for e in found] == ["dataset", "grant", "access", "access", "revoke"]
    # The refused request (wrong grantee) is on the audit log, and so in the stream.
    assert [e.data.get("granted") for e in found if e.kind == "access"] == [True, False]
    assert all(e.data["dataset"] == dataset_id.hex() for e in found)
    assert [e.cursor for e in found] == sorted(e.cursor for e in found)
    assert all_events(chain, Filter("dataset", dataset=b"\1" * 32)) == []


def test_resuming_after_any_cursor_gives_exactly_the_rest() -> None:
    chain = fresh()
    for nonce in range(1, 4):
        chain.next_block(
            [
                record_tx(CITIZEN, 2 * nonce - 1, f"land/{nonce}"),
                record_tx(CITIZEN, 2 * nonce, f"sea/{nonce}"),
            ]
        )
    for want in (Filter("blocks"), Filter("txs"), Filter("records"), Filter("records", namespace="sea")):
        everything = all_events(chain, want)
        assert everything, want
        for k, (cursor, _) in enumerate(everything):
            assert all_events(chain, want, Cursor.parse(cursor)) == everything[k + 1 :]
    assert [k for _, k in all_events(chain, Filter("records", namespace="sea"))] == ["record"] * 3
    assert all_events(chain, Filter("txs", account=BANK.signer.public_key)) == []
    assert len(all_events(chain, Filter("txs", account=CITIZEN.signer.public_key))) == 6


def test_a_block_event_comes_before_its_transactions_and_cursors_parse_strictly() -> None:
    assert Cursor(5, 0) < Cursor(5, 1) < Cursor.end_of(5) < Cursor(6, 0)
    assert Cursor.parse(str(Cursor(12, 3))) == Cursor(12, 3)
    for bad in ("", "12", "a:b", "1:2:3", "-1:0", "1:" + "9" * 10):
        with pytest.raises(CursorError):
            Cursor.parse(bad)
