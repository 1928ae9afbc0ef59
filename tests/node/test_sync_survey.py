"""The height survey's pacing: it slows down only while surveys find nothing new."""

from __future__ import annotations

from p2pcity.node.sync import SYNC_INTERVAL, SYNC_QUIET_INTERVAL, next_survey_interval


def test_quiet_surveys_back_off_to_the_cap() -> None:
    waits = [SYNC_INTERVAL]
    for _ in range(6):
        waits.append(next_survey_interval(waits[-1], quiet=True))
    assert waits[:4] == [SYNC_INTERVAL, 2 * SYNC_INTERVAL, 4 * SYNC_INTERVAL, 8 * SYNC_INTERVAL]
    assert max(waits) == SYNC_QUIET_INTERVAL == waits[-1]


def test_anything_new_returns_to_the_base_interval() -> None:
    assert next_survey_interval(SYNC_QUIET_INTERVAL, quiet=False) == SYNC_INTERVAL
