"""The mempool: admission rules, nonce order, bounds, eviction on commit, batches."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2pcity.mempool import AddResult, Batch, BatchError, Mempool, MempoolFull
from p2pcity.types.tx import TxError
from tests.factories import CHAIN, big_grant_tx, identities, record_tx

ALICE, BOB = identities(2, seed=5)


def pool(nonces: dict[bytes, int] | None = None, **kw: int) -> tuple[Mempool, dict[bytes, int]]:
    committed = nonces if nonces is not None else {}
    return Mempool(CHAIN, lambda s: committed.get(s, 0), **kw), committed


def test_admits_once_and_verifies_signature() -> None:
    mp, _ = pool()
    tx = record_tx(ALICE, 1, "a/x")
    assert mp.add(tx) is AddResult.ADDED
    assert mp.add(tx) is AddResult.DUPLICATE
    assert len(mp) == 1 and mp.is_verified(tx)
    forged = replace(record_tx(ALICE, 2, "a/y"), signature=bytes(64))
    with pytest.raises(TxError, match="signature"):
        mp.add(forged)
    with pytest.raises(TxError, match="chain"):
        mp.add(record_tx(ALICE, 2, "a/y", chain_id="elsewhere"))


def test_stale_far_and_conflicting_nonces_are_refused() -> None:
    mp, committed = pool(max_nonce_gap=10)
    committed[ALICE.signer.public_key] = 5
    with pytest.raises(TxError, match="already used"):
        mp.add(record_tx(ALICE, 5, "a/x"))
    with pytest.raises(TxError, match="too far ahead"):
        mp.add(record_tx(ALICE, 16, "a/x"))
    mp.add(record_tx(ALICE, 6, "a/x"))
    with pytest.raises(TxError, match="already pending"):
        mp.add(record_tx(ALICE, 6, "a/other"))


def test_candidates_follow_nonces_and_interleave_senders() -> None:
    mp, _ = pool()
    for tx in [record_tx(ALICE, 2, "a/2"), record_tx(ALICE, 1, "a/1"), record_tx(ALICE, 4, "a/4")]:
        mp.add(tx)
    mp.add(record_tx(BOB, 1, "b/1"))
    order = [(tx.sender == ALICE.signer.public_key, tx.nonce) for tx in mp.candidates()]
    assert order == [(True, 1), (False, 1), (True, 2)]  # nonce 4 waits for 3


def test_bounds_by_count_and_bytes() -> None:
    mp, _ = pool(max_txs=2)
    mp.add(record_tx(ALICE, 1, "a/1"))
    mp.add(record_tx(ALICE, 2, "a/2"))
    with pytest.raises(MempoolFull):
        mp.add(record_tx(ALICE, 3, "a/3"))
    small, _ = pool(max_bytes=300)
    small.add(record_tx(ALICE, 1, "a/1"))
    with pytest.raises(MempoolFull):
        small.add(record_tx(ALICE, 2, "a/2"))


def test_commit_evicts_included_and_stale() -> None:
    mp, committed = pool()
    txs = [record_tx(ALICE, n, f"a/{n}") for n in (1, 2, 3)]
    for tx in txs:
        mp.add(tx)
    committed[ALICE.signer.public_key] = 2
    mp.remove_committed(txs[:1])  # nonce 2 came in another node's block: stale now
    assert [tx.nonce for tx in mp.candidates()] == [3]
    assert len(mp) == 1 and mp.size_bytes == len(txs[2].encoded)


def test_batches_round_trip_and_reject_garbage() -> None:
    mp, _ = pool()
    for n in (1, 2, 3):
        mp.add(record_tx(ALICE, n, f"a/{n}"))
    batch = Batch.of(mp.take_batch(10))
    assert mp.take_batch(10) == []
    good, bad = Batch.decode(batch.encode()).transactions()
    assert [tx.nonce for tx in good] == [1, 2, 3] and not bad
    with pytest.raises(BatchError):
        Batch.decode(b"\x91\x92garbage")
    mixed = Batch((record_tx(BOB, 1, "b/1").encoded, b"\x00junk"))
    good, bad = mixed.transactions()
    assert len(good) == 1 and len(bad) == 1


def test_gossip_batches_are_split_to_fit_a_byte_bound() -> None:
    mp, _ = pool()
    senders = identities(12, seed=8)
    txs = [big_grant_tx(who, 1) for who in senders]
    for tx in txs:
        mp.add(tx)
    bound = 512 * 1024
    batches = []
    while mp.unbatched:
        batch = mp.take_batch(1000, bound)
        assert batch, "a waiting transaction is always taken"
        batches.append(batch)
    assert [tx for b in batches for tx in b] == txs  # all of them, in order, none twice
    assert all(len(Batch.of(b).encode()) <= bound for b in batches)
    assert len(batches) == 6  # two 240 KB transactions per 512 KiB batch
