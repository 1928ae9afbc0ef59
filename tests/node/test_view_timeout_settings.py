"""consensus.max_timeout_ms bounds the longest view: the pacemaker's doublings are derived from it."""

from __future__ import annotations

import pytest

from p2pcity.config import ConsensusSettings
from p2pcity.consensus import Config
from p2pcity.consensus.pacemaker import Pacemaker
from p2pcity.consensus.validators import ValidatorSet


@pytest.mark.parametrize(
    ("base", "longest", "doublings"),
    [(2000, 16_000, 3), (1000, 16_000, 4), (2000, 2000, 0), (2000, 60_000, 4), (50, 60_000, 10)],
)
def test_the_longest_view_stays_within_max_timeout(base: int, longest: int, doublings: int) -> None:
    settings = ConsensusSettings(base_timeout_ms=base, max_timeout_ms=longest)
    assert settings.backoff_exponent == doublings
    config = Config(base_timeout_ms=base, max_backoff_exponent=settings.backoff_exponent)
    validators = ValidatorSet([bytes([i]) * 32 for i in range(4)])
    pacemaker = Pacemaker(validators, 100, config.base_timeout_ms, config.max_backoff_exponent)
    # 99 views without a QC and many expiries in this one: as long as a view gets, no longer
    pacemaker.retries = 50
    assert base * 2**doublings == pacemaker.timer_ms(high_qc_view=0) <= longest
