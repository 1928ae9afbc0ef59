"""The pacemaker: which view we are in and when to give up on it (who leads: ``reputation``).

A view ends in one of two ways: a QC for it (the protocol made progress) or
a TC, 2f+1 timeouts (it did not). Either certificate, or a QC/TC for any
later view, moves a node forward: that is how a lagging node catches up.
f+1 timeouts for a later view also pull a node forward (one of them is
honest), so nodes scattered across views regroup without a certificate.

Timers back off exponentially with the number of views since the last QC, so
after a partition heals the views grow long enough for messages to arrive,
and shrink back to the base as soon as views succeed again.
"""

from __future__ import annotations

from p2pcity.consensus.aggregator import TimeoutAggregator
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.types.consensus import Timeout


class Pacemaker:
    def __init__(
        self,
        validators: ValidatorSet,
        view: int,
        base_timeout_ms: int,
        max_backoff_exponent: int,
    ) -> None:
        self.validators = validators
        self.view = view
        self.base_timeout_ms = base_timeout_ms
        self.max_backoff_exponent = max_backoff_exponent
        self.timeouts = TimeoutAggregator(validators)
        self.own_timeout: Timeout | None = None  # our signed timeout for the current view
        self.retries = 0  # timer expiries in the current view

    def advance(self, view: int) -> bool:
        """Enter ``view`` if it is later than the current one."""
        if view <= self.view:
            return False
        self.view = view
        self.retries = 0
        self.own_timeout = None
        self.timeouts.prune(view)
        return True

    def timer_ms(self, high_qc_view: int) -> int:
        """Base timeout doubled per view without a QC and per expiry in this view, capped."""
        missed = max(0, self.view - high_qc_view - 1) + self.retries
        return int(self.base_timeout_ms * 2 ** min(missed, self.max_backoff_exponent))
