"""The driver's pacing under MockClock: a leader's own wait for work does not time its view out."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from p2pcity.config import ConsensusSettings
from p2pcity.consensus import BuildProposal, Config, Start
from p2pcity.node.driver import ConsensusDriver, EventInbox
from p2pcity.node.metrics import Metrics
from p2pcity.node.recovery import recover_core
from p2pcity.node.replica import Replica
from p2pcity.types.consensus import Proposal, Timeout
from tests.node.test_replica import GENESIS, IDS, RecordingOutbox, make_replica

SETTINGS = ConsensusSettings()  # the defaults: 1 s empty-block interval, 2 s base timeout


def node_replica(tmp_path: Path, me: int) -> Replica:
    """A replica whose core has the node's default base timeout (the core's own default is shorter)."""
    replica = make_replica(tmp_path, me=me)

    def make_core():  # type: ignore[no-untyped-def]
        config = Config(base_timeout_ms=SETTINGS.base_timeout_ms)
        return recover_core(
            replica.store, key=IDS[me].signer, genesis=GENESIS.block(), app=replica.ledger, config=config
        )

    replica.make_core = make_core
    replica.core = make_core()
    return replica


def leader_of_the_first_view(tmp_path: Path) -> int:
    for me in range(4):
        replica = node_replica(tmp_path / f"probe{me}", me=me)
        if any(isinstance(a, BuildProposal) for a in replica.core.handle(Start())):
            return me
    raise AssertionError("no validator leads the first view")


async def first_timeout_after(tmp_path: Path) -> tuple[float, float]:
    """(when our proposal left, when our first timeout left) for an idle leader nobody answers."""
    replica = node_replica(tmp_path / "leader", me=leader_of_the_first_view(tmp_path))
    metrics = Metrics()
    outbox = RecordingOutbox()
    driver = ConsensusDriver(
        replica, inbox=EventInbox(metrics), outbox=outbox, blocks=outbox, settings=SETTINGS,
        chain_id=replica.core.chain_id, metrics=metrics,
    )  # fmt: skip
    began = trio.current_time()
    proposed = timed_out = None
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        with trio.fail_after(60):
            while timed_out is None:
                await trio.sleep(0.01)
                if proposed is None and any(isinstance(m, Proposal) for m in outbox.sent):
                    proposed = trio.current_time() - began
                if any(isinstance(m, Timeout) for m in outbox.sent):
                    timed_out = trio.current_time() - began
        nursery.cancel_scope.cancel()
    assert proposed is not None
    return proposed, timed_out


async def test_the_idle_wait_moves_the_leaders_timer(tmp_path: Path, autojump_clock: object) -> None:
    proposed, timed_out = await first_timeout_after(tmp_path)
    wait = SETTINGS.empty_block_interval_ms / 1000
    assert proposed == pytest.approx(wait, abs=0.05)  # no transactions: the leader waited
    # The view's timer runs a full base timeout from the proposal, not from the view's start.
    assert timed_out == pytest.approx(wait + SETTINGS.base_timeout_ms / 1000, abs=0.05)


async def test_control_without_the_discount_the_leader_times_out_early(
    tmp_path: Path, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ConsensusDriver, "_discount_wait", lambda self, view, waited: None)
    _, timed_out = await first_timeout_after(tmp_path)
    assert timed_out == pytest.approx(SETTINGS.base_timeout_ms / 1000, abs=0.05)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)
