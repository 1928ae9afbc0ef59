"""A node started from a waypoint refuses history that conflicts with it (issue 11, item 2).

The attacker holds a quorum of the genesis set's keys (a long-range attack:
keys of a set that signed the real history too, leaked later) and serves a
node syncing from genesis a fork of its own, every block well signed. The
node's waypoint (height + hash of the real chain, from operators it trusts)
is all that tells the fork apart. Real Store, Ledger and Replica; the
planted-bug control is the same sync without the waypoint, which commits the fork.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest

from p2pcity.consensus import Config
from p2pcity.crypto.keys import verify
from p2pcity.mempool import Mempool
from p2pcity.node.ledger import Ledger
from p2pcity.node.recovery import epoch_verifier, recover_core
from p2pcity.node.replica import Replica, SyncedBlocks
from p2pcity.node.sync import final_synced
from p2pcity.store import Store
from p2pcity.store.memory import MemoryDatabase
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.epoch import Waypoint
from p2pcity.types.tx import Transaction
from tests.factories import CHAIN, record_tx

from .test_epoch_sync import GENESIS, OLD, History, job, qc_by

HEIGHT = 8


@functools.cache
def chain(fork_at: int | None) -> tuple[Block, ...]:
    """Blocks 1..HEIGHT signed by the genesis set; from ``fork_at`` on, the attacker's own
    transactions (None: the honest chain)."""
    h = History(GENESIS)
    parent, justify = h.blocks[0], GENESIS.genesis_qc()
    out = []
    for height in range(1, HEIGHT + 1):
        txs: tuple[Transaction, ...]
        if fork_at is not None and height >= fork_at:
            txs = (record_tx(OLD[1], height - fork_at + 1, f"fork/doc-{height}"),)
        else:
            txs = (record_tx(OLD[0], height, f"real/doc-{height}"),)
        block = h.block(parent, justify, 0, height, OLD, txs)
        out.append(block)
        parent, justify = block, qc_by(OLD, 0, block.header)
    return tuple(out)


def replica(tmp_path: Path, waypoint: Waypoint | None) -> Replica:
    store = Store.over(MemoryDatabase(), tmp_path, chain_id=CHAIN)
    genesis = GENESIS.block()
    store.commit_block(genesis, None, GENESIS.state_writes(), genesis.header.state_root)
    clock = GENESIS.genesis_time_ms + 10**9
    ledger = Ledger(store, CHAIN, Mempool(CHAIN, lambda _: 0), clock_ms=lambda: clock)

    def make_core():  # type: ignore[no-untyped-def]
        return recover_core(store, key=OLD[0].signer, genesis=genesis, app=ledger, config=Config())

    def verify_sync(head: Block, synced: SyncedBlocks) -> tuple[list[Block], list[QuorumCert]]:
        return final_synced(head, synced, epoch_verifier(store, CHAIN, genesis.id, verify), waypoint)

    return Replica(store=store, ledger=ledger, make_core=make_core, verify_sync=verify_sync)


def waypoint_at(height: int) -> Waypoint:
    return Waypoint.parse(f"{height}:{chain(None)[height - 1].id.hex()}")


def test_the_honest_chain_syncs_through_its_waypoint(tmp_path: Path) -> None:
    node = replica(tmp_path, waypoint_at(4))
    count, _ = node.apply_sync(job(list(chain(None))))
    assert count >= 4 and node.store.block_at(4) == chain(None)[3]


@pytest.mark.parametrize("fork_at", [4, 3, 1], ids=["at the waypoint", "just below", "from genesis"])
def test_a_fork_below_or_at_the_waypoint_is_refused_whole(
    tmp_path: Path, fork_at: int, caplog: pytest.LogCaptureFixture
) -> None:
    forked = chain(fork_at)
    assert forked[fork_at - 1].id != chain(None)[fork_at - 1].id
    node = replica(tmp_path, waypoint_at(4))
    with caplog.at_level(logging.ERROR, logger="p2pcity.node.sync"):
        count, _ = node.apply_sync(job(list(forked)))
    assert count == 0 and node.store.last_height() == 0
    assert "REFUSED history" in caplog.text and "conflicts with the waypoint 4:" in caplog.text
    # The real chain still syncs on top.
    count, _ = node.apply_sync(job(list(chain(None))))
    assert node.store.block_at(4) == chain(None)[3]


def test_control_without_the_waypoint_the_fork_is_committed(tmp_path: Path) -> None:
    node = replica(tmp_path, None)
    count, _ = node.apply_sync(job(list(chain(1))))
    assert count > 0 and node.store.block_at(1) == chain(1)[0] != chain(None)[0]


def test_waypoint_text_round_trips_and_bad_ones_are_refused() -> None:
    wp = waypoint_at(4)
    assert Waypoint.parse(wp.text()) == wp
    for bad in ("", "4", "x:00", "4:abcd", f"-1:{'00' * 32}", f"4:{'00' * 32}:1:2"):
        with pytest.raises(ValueError, match="HEIGHT:BLOCK_HASH"):
            Waypoint.parse(bad)


def test_a_bad_waypoint_in_the_config_is_one_clear_error() -> None:
    import dataclasses  # noqa: PLC0415

    from p2pcity.config import ConfigError, ConsensusSettings, NodeConfig  # noqa: PLC0415

    config = NodeConfig("north", Path("/tmp/x"))
    good = dataclasses.replace(config, consensus=ConsensusSettings(waypoint=waypoint_at(4).text()))
    good.validate()
    bad = dataclasses.replace(config, consensus=ConsensusSettings(waypoint="4:nothex"))
    with pytest.raises(ConfigError, match=r"consensus\.waypoint: a waypoint is HEIGHT:BLOCK_HASH"):
        bad.validate()
