"""``p2pcity_consensus_dropped{reason}``: why the core ignored an input, on /metrics, across cores.

The driver (under MockClock) is fed votes the core must refuse; the counts on
the metrics page follow the core's own ``dropped`` reasons, and go on adding up
after the replica replaces its core (an epoch change), whose counts start at
zero again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import trio
import trio.testing

from p2pcity.config import ConsensusSettings
from p2pcity.consensus import VoteReceived
from p2pcity.node.driver import ConsensusDriver, EventInbox
from p2pcity.node.metrics import Metrics
from p2pcity.types.consensus import Vote
from tests.node.test_replica import KEYS, RecordingOutbox, make_replica


def dropped_on_page(metrics: Metrics) -> dict[str, float]:
    prefix = 'p2pcity_consensus_dropped_total{reason="'
    out = {}
    for line in metrics.render().decode().splitlines():
        if line.startswith(prefix):
            reason, value = line.removeprefix(prefix).split('"} ')
            out[reason] = float(value)
    return out


def forged_vote(epoch: int, view: int) -> Vote:
    """A vote in a validator's name with a signature that does not verify."""
    return Vote(epoch, view, 1, b"\x01" * 32, 0, KEYS[1], b"\x00" * 64)


async def test_refused_votes_are_counted_by_reason_across_a_core_replacement(
    tmp_path: Path, autojump_clock: object
) -> None:
    replica = make_replica(tmp_path, me=0)
    metrics = Metrics()
    inbox = EventInbox(metrics)
    outbox = RecordingOutbox()
    driver = ConsensusDriver(
        replica, inbox=inbox, outbox=outbox, blocks=outbox, settings=ConsensusSettings(),
        chain_id=replica.core.chain_id, metrics=metrics,
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        epoch = replica.core.epoch
        inbox.submit(VoteReceived(forged_vote(epoch, 1)))
        inbox.submit(VoteReceived(forged_vote(epoch + 1, 1)))
        await trio.sleep(0.1)
        assert replica.core.dropped == Counter({"invalid vote": 1, "future epoch": 1})
        assert dropped_on_page(metrics) == {"invalid vote": 1, "future epoch": 1}
        replica.core = replica.make_core()  # as after an epoch change: a core counting from zero
        inbox.submit(VoteReceived(forged_vote(epoch, 1)))
        await trio.sleep(0.1)
        assert replica.core.dropped == Counter({"invalid vote": 1})
        assert dropped_on_page(metrics) == {"invalid vote": 2, "future epoch": 1}
        nursery.cancel_scope.cancel()


def test_a_new_core_starts_a_new_baseline() -> None:
    """The old core had counted 5; the new one's first 2 are new, not 3 fewer (nor a negative inc)."""
    metrics = Metrics()
    assert metrics.observe_dropped(Counter({"stale vote": 5})) == {"stale vote": 5}
    assert metrics.observe_dropped(Counter({"stale vote": 2})) == {"stale vote": 2}
    assert dropped_on_page(metrics) == {"stale vote": 7}


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def test_a_message_of_a_later_epoch_wakes_the_syncer_and_one_of_ours_does_not(tmp_path: Path) -> None:
    """Only the node that forms the commit QC of an epoch's last block commits it by consensus;
    the others learn it by sync. A message of the next epoch is the first sign: it wakes the
    syncer at once (once per committed height), instead of its next round, 2 s later."""
    woken: list[int] = []
    replica = make_replica(tmp_path, me=0, on_behind=woken.append)
    epoch = replica.core.epoch
    replica.handle(VoteReceived(forged_vote(epoch + 1, 1)))
    assert woken == [1]  # the committed root is genesis: behind from height 1 on
    replica.handle(VoteReceived(forged_vote(epoch + 1, 2)))
    replica.handle(VoteReceived(forged_vote(epoch, 1)))  # our epoch (invalid): not a sign
    assert woken == [1]
