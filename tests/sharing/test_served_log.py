"""A proxy serves a committed request once, and a restart does not change that (real RocksDB)."""

from __future__ import annotations

from pathlib import Path

from p2pcity.chain.access import Refusal
from p2pcity.sharing.proxy import Proxy
from p2pcity.sharing.service import StoreServedLog
from p2pcity.store import Store
from tests.factories import CHAIN

from .builders import VALIDATORS, new_world


def test_served_markers_survive_a_restart(tmp_path: Path) -> None:
    world = new_world()
    grant = world.grant(world.put())
    tx, _ = world.request(grant)
    request = world.ask(grant, tx)
    with Store.open(tmp_path / "store", chain_id=CHAIN) as store:
        proxy = Proxy(VALIDATORS[0], CHAIN, served=StoreServedLog(store))
        assert world.answer(proxy, request).served
        assert world.answer(proxy, request).refusal == Refusal.ALREADY_SERVED
    with Store.open(tmp_path / "store", chain_id=CHAIN) as store:
        restarted = Proxy(VALIDATORS[0], CHAIN, served=StoreServedLog(store))
        assert world.answer(restarted, request).refusal == Refusal.ALREADY_SERVED
        # Another request of the same grant is its own use.
        tx2, _ = world.request(grant)
        assert world.answer(restarted, world.ask(grant, tx2)).served
