"""Two independent RocksDB stores fed the same blocks agree on every state root and value."""

from __future__ import annotations

from pathlib import Path

from p2pcity.chain import proof, tree
from p2pcity.chain.executor import execute
from p2pcity.chain.state import record_key
from p2pcity.store import Store
from tests.factories import CHAIN, ChainBuilder, genesis_for, identities, record_tx

VALIDATORS = identities(4)
USERS = identities(3, seed=9)


def _replay(path: Path, chain: ChainBuilder) -> list[bytes]:
    roots = []
    with Store.open(path, chain_id=CHAIN) as store:
        genesis = chain.blocks[0]
        store.commit_block(genesis, None, chain.genesis.state_writes(), genesis.header.state_root)
        for block in chain.blocks[1:]:
            result = execute(
                store, store.state_root() or b"", CHAIN, block.height, block.header.timestamp_ms, block.txs
            )
            assert result.state_root == block.header.state_root
            store.commit_block(block, None, result.writes, result.state_root)
            roots.append(result.state_root)
    return roots


def test_two_stores_same_blocks_same_roots(tmp_path: Path) -> None:
    chain = ChainBuilder(VALIDATORS, genesis_for(VALIDATORS))
    for i in range(1, 8):
        chain.next_block([record_tx(u, i, f"ns{j}/doc{i}") for j, u in enumerate(USERS)])
        chain.next_block([])  # empty blocks move the root too
    roots_a = _replay(tmp_path / "a", chain)
    roots_b = _replay(tmp_path / "b", chain)
    assert roots_a == roots_b == [b.header.state_root for b in chain.blocks[1:]]
    with Store.open(tmp_path / "a") as a, Store.open(tmp_path / "b") as b:
        assert list(a.state_iter(b"")) == list(b.state_iter(b""))
        assert list(a.state_iter(b"")) == sorted(chain.state.items.items())


def test_proofs_from_a_rocksdb_store_verify_against_the_headers(tmp_path: Path) -> None:
    chain = ChainBuilder(VALIDATORS, genesis_for(VALIDATORS))
    for i in range(1, 4):
        chain.next_block([record_tx(u, i, f"ns{j}/doc{i}") for j, u in enumerate(USERS)])
    _replay(tmp_path / "a", chain)
    with Store.open(tmp_path / "a") as store:
        for block in chain.blocks:
            for name in ("ns0/doc1", "ns1/doc3", "ns2/absent"):
                roots, p = tree.prove_at(store, block.height, record_key(name))
                assert proof.state_root(roots.tree_root, roots.aux_root) == block.header.state_root
                present = block.height >= int(name[-1]) if name[-1].isdigit() else False
                value = store.state_get(record_key(name)) if present else None
                proof.verify(p, roots.tree_root, record_key(name), value)
