"""The per-sender transaction index the API's paginated lists read (``acct_txs``)."""

from __future__ import annotations

from pathlib import Path

import rocksdict

from p2pcity.store import Store, layout
from p2pcity.types.block import Block
from tests.store.builders import CHAIN_ID, SENDER, ZERO, chain, child, make_tx


def _commit_all(store: Store, blocks: list[Block]) -> None:
    for block in blocks:
        store.commit_block(block, None, {}, ZERO)


def test_a_senders_transactions_in_commit_order_with_a_cursor(tmp_path: Path) -> None:
    blocks = chain(3, txs_per_block=2)
    with Store.open(tmp_path / "s", chain_id=CHAIN_ID, create=True) as store:
        _commit_all(store, blocks)
        found = list(store.account_txs(SENDER.public_key))
        expected = [(b.height, i, tx.hash) for b in blocks for i, tx in enumerate(b.txs)]
        assert found == expected and len(found) == 6
        # Resuming after any entry yields exactly the rest: no gap, no repeat.
        for k, (height, index, _) in enumerate(expected):
            assert list(store.account_txs(SENDER.public_key, (height, index))) == expected[k + 1 :]
        assert list(store.account_txs(b"\x07" * 32)) == []


def test_a_store_from_before_the_index_opens_and_indexes_new_commits(tmp_path: Path) -> None:
    path = tmp_path / "s"
    blocks = chain(2, txs_per_block=1)
    with Store.open(path, chain_id=CHAIN_ID, create=True) as store:
        _commit_all(store, blocks)
    # Make it a store of the format before the index existed.
    db = rocksdict.Rdict(str(path / layout.DB_DIR), column_families={
        name: rocksdict.Options(raw_mode=True) for name in layout.FAMILIES
    }, options=rocksdict.Options(raw_mode=True))
    db.drop_column_family(layout.ACCOUNT_TXS)
    db.close()
    assert layout.ACCOUNT_TXS not in rocksdict.Rdict.list_cf(str(path / layout.DB_DIR))
    with Store.open(path, chain_id=CHAIN_ID, create=False) as store:
        assert store.last_height() == 2
        assert list(store.account_txs(SENDER.public_key)) == []  # older blocks are not indexed
        extra = child(blocks[-1], (make_tx(99),))
        store.commit_block(extra, None, {}, ZERO)
        assert list(store.account_txs(SENDER.public_key)) == [(3, 0, extra.txs[0].hash)]
