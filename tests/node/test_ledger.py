"""The ledger as consensus sees it: the block byte budget, when building and when verifying."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pcity.chain.executor import account_nonce
from p2pcity.mempool import Mempool
from p2pcity.node import ledger as ledger_module
from p2pcity.node.ledger import BLOCK_TX_BYTES, Ledger, over_budget
from p2pcity.store import Store
from p2pcity.types.block import Block, BlockHeader, tx_root
from p2pcity.types.tx import Transaction
from tests.factories import CHAIN, big_grant_tx, genesis_for, identities, record_tx

IDS = identities(4, seed=4)
GENESIS = genesis_for(IDS)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Store.open(tmp_path, chain_id=CHAIN) as store:
        block = GENESIS.block()
        store.commit_block(block, None, GENESIS.state_writes(), block.header.state_root)
        mempool = Mempool(CHAIN, lambda account: account_nonce(store, account))
        yield Ledger(store, CHAIN, mempool, clock_ms=lambda: GENESIS.genesis_time_ms + 60_000)


def flood(ledger: Ledger, count: int = 40) -> list[Transaction]:
    """40 transactions of 240 KB from fresh accounts (the ledger refuses them, a leader includes them)."""
    txs = [big_grant_tx(who, 1) for who in identities(count, seed=40)]
    for tx in txs:
        ledger.mempool.add(tx)
    return txs


def block_of(ledger: Ledger, txs: list[Transaction]) -> Block:
    parent = GENESIS.block()
    # The state root of an empty block is not what we check.
    result = ledger.build(parent, GENESIS.genesis_qc(), 0)[2]
    header = BlockHeader(
        CHAIN, 0, 1, 1, parent.id, GENESIS.genesis_qc(), IDS[1].signer.public_key,
        GENESIS.genesis_time_ms + 1000, tx_root(txs), len(txs), result.state_root,
    )  # fmt: skip
    return Block.create(IDS[1].signer, header, tuple(txs))


def test_a_flood_of_big_transactions_is_built_into_blocks_within_the_budget(ledger: Ledger) -> None:
    flood(ledger)
    txs, _, result = ledger.build(GENESIS.block(), GENESIS.genesis_qc(), 5000)
    assert 0 < len(txs) < 40
    assert sum(len(tx.encoded) for tx in txs) <= BLOCK_TX_BYTES
    assert over_budget(txs) is None
    # The refused transactions are in the block all the same, and cost their senders the nonce.
    assert not any(r.ok for r in result.receipts)


def test_without_the_budget_the_same_flood_makes_an_unfetchable_block(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted-bug control: the build test above fails when the budget is not applied."""
    monkeypatch.setattr(ledger_module, "within_budget", lambda txs: txs)
    flood(ledger)
    txs, _, _ = ledger.build(GENESIS.block(), GENESIS.genesis_qc(), 5000)
    assert len(txs) == 40 and sum(len(tx.encoded) for tx in txs) > 9_000_000
    assert over_budget(txs) is not None


def test_a_proposal_over_the_budget_gets_no_vote(ledger: Ledger) -> None:
    txs = flood(ledger, 9)
    assert over_budget(txs) is not None
    assert not ledger.verify_block(block_of(ledger, txs), GENESIS.block())
    assert over_budget(txs[:8]) is None


def test_the_budget_counts_transactions_too() -> None:
    tiny = record_tx(IDS[0], 1, "t")
    many = [tiny] * (ledger_module.BLOCK_MAX_TXS + 1)
    assert f"{len(many)} transactions, more than" in (over_budget(many) or "")
    assert "transactions, more than" not in (over_budget(many[:-1]) or "")


def test_a_handler_bug_refuses_the_peers_block_instead_of_crashing_the_node(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from p2pcity.chain import executor  # noqa: PLC0415
    from p2pcity.types.tx import RecordPut  # noqa: PLC0415

    def broken(*_: object) -> None:
        raise RuntimeError("a bug in a handler")

    monkeypatch.setitem(executor.HANDLERS, RecordPut, broken)
    tx = record_tx(IDS[2], 1, "poison")
    assert not ledger.verify_block(block_of(ledger, [tx]), GENESIS.block())
    assert ledger.speculative_blocks == 0  # nothing of the failed execution is kept
