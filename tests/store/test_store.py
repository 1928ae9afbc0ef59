"""Committed blocks, indexes, state, consensus records, metadata and opening rules of the store."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import rocksdict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pcity.codec import encode
from p2pcity.store import CommitOrderError, SafetyRegressionError, Store, StoreError, layout
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import SafetyState
from tests.store.builders import CHAIN_ID, ZERO, certify, chain, child, genesis, make_tx


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store", chain_id=CHAIN_ID) as s:
        yield s


def poke(path: Path, family: str, key: bytes, value: bytes | None) -> None:
    """Write a raw value behind the store's back (to corrupt it)."""
    options, families = layout.db_options(create=False)
    db = rocksdict.Rdict(str(path / layout.DB_DIR), options=options, column_families=families)
    cf = db.get_column_family(family)
    if value is None:
        cf.delete(key)
    else:
        cf.put(key, value)
    del cf
    db.close()


def commit_all(store: Store, blocks: list[Block], state: bool = True) -> None:
    for block in blocks:
        writes = {b"h/%08d" % block.height: block.id} if state else {}
        store.commit_block(block, certify(block), writes, block.id)


# --- committed blocks ----------------------------------------------------


def test_empty_store(store: Store) -> None:
    assert store.last_height() is None
    assert store.last_block_id() is None
    assert store.state_root() is None
    assert store.block_at(0) is None
    assert store.qc_for(0) is None
    assert list(store.blocks_range(0, 10)) == []


def test_commit_and_read_back_after_reopen(tmp_path: Path) -> None:
    blocks = chain(5, txs_per_block=3)
    with Store.open(tmp_path, chain_id=CHAIN_ID) as s:
        commit_all(s, blocks[:4])
        # The last block comes without a certificate: the next block's justify stands in.
        s.commit_block(blocks[4], None, {}, ZERO)
        s.commit_block(blocks[5], certify(blocks[5]), {}, b"\x07" * 32)
    with Store.open(tmp_path, chain_id=CHAIN_ID) as s:
        assert s.last_height() == 5
        assert s.last_block_id() == blocks[5].id
        assert s.state_root() == b"\x07" * 32
        for block in blocks:
            assert s.block_bytes_at(block.height) == block.encoded
            assert s.block_at(block.height) == block
            assert s.block_by_id(block.id) == block
            assert s.height_of(block.id) == block.height
            for index, tx in enumerate(block.txs):
                assert s.tx_location(tx.hash) == (block.height, index)
        assert s.qc_for(3) == certify(blocks[3])
        assert s.qc_for(4) == blocks[5].justify
        assert s.qc_for(6) is None
        assert s.block_at(6) is None and s.block_at(-1) is None
        assert s.tx_location(make_tx(999_999).hash) is None
        assert [b.height for b in s.blocks_range(2, 4)] == [2, 3]
        assert [b.height for b in s.blocks_range(-5, 100)] == [0, 1, 2, 3, 4, 5]
        assert list(s.blocks_range(4, 2)) == []
        assert list(s.block_bytes_range(5, 6)) == [(5, blocks[5].encoded)]


def test_first_commit_must_be_genesis(store: Store) -> None:
    blocks = chain(1)
    with pytest.raises(CommitOrderError, match="must be genesis"):
        store.commit_block(blocks[1], None, {}, ZERO)
    assert store.last_height() is None


def test_commits_are_sequential(store: Store) -> None:
    blocks = chain(3)
    commit_all(store, blocks[:2])
    with pytest.raises(CommitOrderError, match="last committed height is 1"):
        store.commit_block(blocks[3], None, {b"k": b"v"}, ZERO)
    with pytest.raises(CommitOrderError, match="last committed height is 1"):
        store.commit_block(blocks[1], None, {}, ZERO)
    fork = child(genesis(), (make_tx(5),))
    fork = child(fork)
    with pytest.raises(CommitOrderError, match="does not extend"):
        store.commit_block(fork, None, {}, ZERO)
    with pytest.raises(CommitOrderError, match="another block"):
        store.commit_block(blocks[2], certify(blocks[1]), {}, ZERO)
    with pytest.raises(StoreError, match="32 bytes"):
        store.commit_block(blocks[2], None, {}, b"short")
    # Nothing of the refused commits was written.
    assert store.last_height() == 1
    assert store.state_get(b"k") is None
    assert store.block_by_id(fork.id) is None
    store.commit_block(blocks[2], None, {}, ZERO)
    assert store.last_height() == 2


def test_one_chain_per_store(tmp_path: Path) -> None:
    with Store.open(tmp_path) as s:
        s.commit_block(genesis(), None, {}, ZERO)
        with pytest.raises(CommitOrderError, match="chain"):
            s.commit_block(child(genesis("other-chain")), None, {}, ZERO)
    with pytest.raises(StoreError, match="belongs to chain"):
        Store.open(tmp_path, chain_id="other-chain")
    Store.open(tmp_path, chain_id=CHAIN_ID).close()


def test_commit_removes_the_block_from_pending(store: Store) -> None:
    blocks = chain(2)
    commit_all(store, blocks[:1])
    store.save_safety(record(2), certified=[blocks[2], blocks[1]])
    assert store.pending_blocks() == [blocks[1], blocks[2]]
    store.commit_block(blocks[1], None, {}, ZERO)
    assert store.pending_blocks() == [blocks[2]]


# --- state -----------------------------------------------------------------


def test_state_writes_and_deletes(store: Store) -> None:
    blocks = chain(2)
    store.commit_block(blocks[0], None, {b"a/1": b"x", b"a/2": b"y", b"b": b"z"}, ZERO)
    store.commit_block(blocks[1], None, {b"a/1": None, b"a/3": b"w", b"missing": None}, ZERO)
    assert store.state_get(b"a/1") is None
    assert store.state_get(b"b") == b"z"
    assert list(store.state_iter(b"a/")) == [(b"a/2", b"y"), (b"a/3", b"w")]
    assert list(store.state_iter(b"a/", start=b"a/3")) == [(b"a/3", b"w")]
    assert list(store.state_iter(b"a/", start=b"")) == [(b"a/2", b"y"), (b"a/3", b"w")]
    assert [k for k, _ in store.state_iter(b"")] == [b"a/2", b"a/3", b"b"]
    store.commit_block(blocks[2], None, {b"\xff\xff": b"1", b"\xff": b"2"}, ZERO)
    assert list(store.state_iter(b"\xff")) == [(b"\xff", b"2"), (b"\xff\xff", b"1")]


keys = st.lists(st.sampled_from([b"\x00", b"\x01", b"\xff"]), max_size=3).map(b"".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.dictionaries(keys, st.none() | st.binary(max_size=8), max_size=6), max_size=6),
    keys,
)
def test_state_matches_a_dict(batches: list[dict[bytes, bytes | None]], prefix: bytes) -> None:
    model: dict[bytes, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp, Store.open(tmp) as s:
        block = genesis()
        for writes in batches:
            s.commit_block(block, None, writes, ZERO)
            for key, value in writes.items():
                if value is None:
                    model.pop(key, None)
                else:
                    model[key] = value
            block = child(block)
        for key in {*model, *[k for w in batches for k in w]}:
            assert s.state_get(key) == model.get(key)
        expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        assert list(s.state_iter(prefix)) == expected


# --- consensus records and metadata ---------------------------------------


def record(voted: int, timed_out: int = 0, locked: int = 0, high: int = 0) -> SafetyState:
    def qc(view: int) -> QuorumCert:
        return QuorumCert(0, view, bytes([view % 256]) * 32, view, ())

    return SafetyState(voted, timed_out, qc(locked), qc(high))


def test_safety_and_pending_survive_reopen(tmp_path: Path) -> None:
    blocks = chain(3)
    with Store.open(tmp_path) as s:
        assert s.load_safety() is None
        s.save_safety(record(1))
        s.save_safety(record(2), certified=blocks[1:])
        s.drop_pending([blocks[2].id, b"\x09" * 32])
    with Store.open(tmp_path) as s:
        assert s.load_safety() == record(2)
        assert s.pending_blocks() == [blocks[1], blocks[3]]


@pytest.mark.parametrize(
    "lower",
    [record(4, 5, 2, 3), record(5, 4, 2, 3), record(5, 5, 1, 3), record(5, 5, 2, 2)],
    ids=["voted", "timed out", "lock", "high qc"],
)
def test_safety_record_never_moves_backwards(tmp_path: Path, lower: SafetyState) -> None:
    block = chain(1)[1]
    with Store.open(tmp_path) as s:
        s.save_safety(record(5, 5, 2, 3))
        with pytest.raises(SafetyRegressionError, match="refusing to lower"):
            s.save_safety(lower, certified=[block])
        # Nothing of the refused write is on disk, the certified block included.
        assert s.load_safety() == record(5, 5, 2, 3)
        assert s.pending_blocks() == []
        s.save_safety(record(5, 5, 2, 3))  # equal is not lower
        s.save_safety(record(9, 6, 4, 8))
    with Store.open(tmp_path) as s:
        # The rule holds against the record read back from disk, not only one held in memory.
        with pytest.raises(SafetyRegressionError):
            s.save_safety(record(8, 6, 4, 8))
        assert s.load_safety() == record(9, 6, 4, 8)


def test_a_corrupt_safety_record_is_a_clear_error(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    poke(tmp_path, layout.CONSENSUS, layout.K_SAFETY, b"not a record")
    with pytest.raises(StoreError, match="corrupt consensus safety record"):
        Store.open(tmp_path)


def test_node_metadata(store: Store) -> None:
    assert store.meta_get("genesis") is None
    store.meta_put("genesis", b"\x01" * 32)
    assert store.meta_get("genesis") == b"\x01" * 32
    store.meta_put("genesis", None)
    assert store.meta_get("genesis") is None


# --- opening -----------------------------------------------------------------


def test_foreign_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a store")
    with pytest.raises(StoreError, match="not a p2pcity store"):
        Store.open(tmp_path)
    file = tmp_path / "notes.txt"
    with pytest.raises(StoreError, match="not a directory"):
        Store.open(file)
    with pytest.raises(StoreError, match="no p2pcity store"):
        Store.open(tmp_path / "absent", create=False)


def test_foreign_rocksdb_is_refused(tmp_path: Path) -> None:
    db = rocksdict.Rdict(str(tmp_path / layout.DB_DIR))
    db["some"] = "thing"
    db.close()
    del db
    with pytest.raises(StoreError, match="not a p2pcity store"):
        Store.open(tmp_path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    poke(tmp_path, layout.META, layout.K_FORMAT, b"p2pcity-store/999")
    with pytest.raises(StoreError, match="format 'p2pcity-store/999'"):
        Store.open(tmp_path)


def test_store_in_use_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="in use"):
        Store.open(store.path)


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.state_get(b"k")


def test_corrupt_values_are_reported(tmp_path: Path) -> None:
    blocks = chain(3)
    with Store.open(tmp_path) as s:
        commit_all(s, blocks)
    poke(tmp_path, layout.BLOCKS, layout.height_key(1), b"\x93garbage")
    poke(tmp_path, layout.TXS, blocks[2].txs[0].hash, b"\x01")
    poke(tmp_path, layout.QCS, layout.height_key(2), encode(certify(blocks[2]))[:-3])
    with Store.open(tmp_path) as s:
        with pytest.raises(StoreError, match="corrupt block at height 1"):
            s.block_at(1)
        with pytest.raises(StoreError, match="corrupt block at height 1"):
            list(s.blocks_range(0, 4))
        with pytest.raises(StoreError, match="corrupt transaction index"):
            s.tx_location(blocks[2].txs[0].hash)
        with pytest.raises(StoreError, match="corrupt certificate at height 2"):
            s.qc_for(2)
    poke(tmp_path, layout.BLOCKS, layout.height_key(3), encode(blocks[2]))
    with pytest.raises(StoreError, match="head block at height 3"):
        Store.open(tmp_path)
    poke(tmp_path, layout.META, layout.K_HEAD, b"\x00" * 5)
    with pytest.raises(StoreError, match="corrupt store head"):
        Store.open(tmp_path)


def test_abandoned_iterators_do_not_keep_the_store_open(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    commit_all(s, chain(3))
    states = s.state_iter(b"")
    blocks = s.blocks_range(0, 4)
    assert next(states)[0] == b"h/00000000"
    assert next(blocks).height == 0
    s.close()
    with Store.open(tmp_path) as again:
        assert again.last_height() == 3
    assert list(states) == []
