"""Leader reputation at an epoch's start: the window reaches back across the change.

A validator just added (still syncing when its epoch begins) took part in none of
the last committed blocks, so the new epoch's core benches it at once; it leads
again once its votes are in a QC. Judged from the new epoch's blocks alone, the
window was not full, nobody was benched, and round-robin gave it the new epoch's
first views, each a timeout (4-9 s stalls at every change on a real testnet).
"""

from __future__ import annotations

from pathlib import Path

from p2pcity.consensus import Config
from p2pcity.mempool import Mempool
from p2pcity.node.ledger import Ledger
from p2pcity.node.recovery import recover_core
from p2pcity.store import Store
from p2pcity.store.memory import MemoryDatabase
from p2pcity.types.tx import District, DistrictChange, Transaction
from tests.factories import CHAIN, ChainBuilder, approve, genesis_for, identities

IDS = identities(5, seed=31)
GENESIS = genesis_for(IDS[:4])


def test_a_validator_just_added_is_benched_from_the_new_epochs_first_view(tmp_path: Path) -> None:
    store = Store.over(MemoryDatabase(), tmp_path, chain_id=CHAIN)
    chain = ChainBuilder(IDS[:4], GENESIS)
    g = GENESIS.block()
    store.commit_block(g, None, GENESIS.state_writes(), g.header.state_root)
    newcomer = IDS[4]
    added = District("hospital", newcomer.signer.public_key, newcomer.public.pre_key, "peer-h", "validator")
    change = approve(DistrictChange("add", added, 0, ()), IDS[:3])
    for i in range(12):  # a full window of epoch-0 blocks, then the change
        txs = [Transaction.create(IDS[0].signer, CHAIN, 1, change)] if i == 11 else []
        block, result = chain.next_block(txs)
        store.commit_block(block, chain.qc_for(block), result.writes, result.state_root)
    now_ms = GENESIS.genesis_time_ms + 10**9
    ledger = Ledger(store, CHAIN, Mempool(CHAIN, lambda _: 0), clock_ms=lambda: now_ms)
    core = recover_core(store, key=IDS[0].signer, genesis=g, app=ledger, config=Config())
    assert core.epoch == 1 and newcomer.signer.public_key in core.validators.keys
    assert core.reputation.benched_on(core.committed, lambda _: None) == {newcomer.signer.public_key}
    # It is not the leader of any of the new epoch's first views.
    leaders = {core.reputation.leader(view, core.committed, lambda _: None) for view in range(1, 11)}
    assert newcomer.signer.public_key not in leaders and len(leaders) == 4
