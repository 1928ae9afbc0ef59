"""The unhappy path: timers, timeouts, timeout certificates and view synchronisation.

A mixin of :class:`~p2pcity.consensus.core.Core`, which owns all the state;
it lives apart because it is the half of the protocol that moves views when
the happy path (proposal -> votes -> QC) does not:

- the timer of a view expires -> sign a timeout carrying our high QC (durable
  first: we never vote in that view again), broadcast it, and broadcast our
  vote of the view too, so the QC is not lost with a silent next leader;
- 2f+1 timeouts of a view -> a TC: broadcast it and enter the next view;
- f+1 timeouts of a later view -> join it (one of them is honest);
- any QC or TC of a later view -> jump to the view after it (catching up).

Views regroup after partitions and restarts because the certificate that
moved a node forward is never lost (DiemBFT/Aptos's SyncInfo and persisted
highest TC): the highest TC is part of the durable safety record, so a
restarted node comes back in the view it had reached; every local timeout
re-sends it (when newer than the high QC its timeout carries), so a peer that
missed it catches up; and a timeout from a peer stuck in an earlier view is
answered, directly and once per peer and view of ours, with our timeout and
that TC. The first honest node in any view got there with a certificate, so
after GST every honest node reaches the highest honest view, and f+1
timeouts there pull the rest in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from p2pcity.consensus.actions import Action, Broadcast, Send, SetTimer
from p2pcity.consensus.aggregator import VoteAggregator
from p2pcity.consensus.evidence import EvidencePool
from p2pcity.consensus.pacemaker import Pacemaker
from p2pcity.consensus.sync import Synchronizer
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.block import QuorumCert
from p2pcity.types.consensus import SafetyState, Timeout, TimeoutCert, Vote


class ViewChange:
    # The state is Core's; declared here for the type checker.
    key: SigningKey
    chain_id: str
    epoch: int
    safety: SafetyState
    pacemaker: Pacemaker
    validators: ValidatorSet
    member: bool  # a validator of this epoch (an observer signs nothing)
    verifier: Verifier
    votes: VoteAggregator
    evidence_pool: EvidencePool
    sync: Synchronizer
    dropped: Counter[str]
    _out: list[Action]
    _my_vote: Vote | None
    _helped: set[bytes]  # peers answered since our view or timer last moved

    @property
    def view(self) -> int:
        return self.pacemaker.view

    # Provided by Core.
    def _process_qc(self, qc: QuorumCert) -> None:
        raise NotImplementedError

    def _add_vote(self, vote: Vote) -> None:
        raise NotImplementedError

    def _propose_if_leader(self) -> None:
        raise NotImplementedError

    def _persist(self) -> None:
        raise NotImplementedError

    # --- events --------------------------------------------------------------

    def _on_timeout(self, timeout: Timeout) -> None:
        # Rule: a timeout for a view we left counts for nothing, but its QC may be news.
        if timeout.view < self.view:
            high = timeout.high_qc
            if high.view > self.safety.high_qc.view and self.verifier.qc(high):
                self._process_qc(high)
            self.dropped["stale timeout"] += 1
            self._help(timeout)
            return
        if not self.pacemaker.timeouts.wants(timeout):
            self.dropped["duplicate timeout"] += 1
            return
        # Rule: signed by a validator, and carrying a valid QC.
        if not self.verifier.timeout(timeout) or not self.verifier.qc(timeout.high_qc):
            self.dropped["invalid timeout"] += 1
            return
        self._process_qc(timeout.high_qc)
        self._add_timeout(timeout)

    def _on_tc(self, tc: TimeoutCert) -> None:
        # Rule: a TC for a view we already left teaches us nothing.
        if tc.view < self.view:
            self.dropped["stale tc"] += 1
            return
        if not self.verifier.tc(tc):
            self.dropped["invalid tc"] += 1
            return
        self._process_tc(tc)

    def _on_timer(self, view: int) -> None:
        if view != self.view:
            return  # the timer of a view we already left
        self.pacemaker.retries += 1
        self._helped.clear()
        self._local_timeout()
        # Ask again for blocks that never came (the request or the reply may have been lost).
        self._out.extend(self.sync.retry())
        if self.view == view:
            self._set_timer()

    # --- views ---------------------------------------------------------------

    def _process_tc(self, tc: TimeoutCert) -> None:
        self._process_qc(tc.high_qc)
        self._note_tc(tc)
        self._advance(tc.view + 1)

    def _note_tc(self, tc: TimeoutCert) -> None:
        high = self.safety.high_tc
        if high is None or tc.view > high.view:
            self.safety = replace(self.safety, high_tc=tc)  # durable with the next persist

    def _newest_tc(self) -> TimeoutCert | None:
        """Our highest TC when it proves a later view than our high QC does (a timeout carries
        the QC, not the TC: the TC must travel beside it)."""
        tc = self.safety.high_tc
        return tc if tc is not None and tc.view > self.safety.high_qc.view else None

    def _help(self, stale: Timeout) -> None:
        """A validator still times out in a view we left: send it what moved us on, directly.

        Once per peer until our view or timer moves, so replayed old timeouts cost us at
        most one small message per validator per timer period."""
        signer = stale.signer
        if not self.member or signer == self.key.public_key or signer not in self.validators:
            return
        if signer in self._helped:
            return
        own, tc = self.pacemaker.own_timeout, self._newest_tc()
        if own is None and tc is None:
            return  # we moved on by a QC: the next proposal carries it to everyone
        self._helped.add(signer)
        if tc is not None and tc.view >= stale.view:
            self._out.append(Send(signer, tc))
        if own is not None:
            self._out.append(Send(signer, own))

    def _advance(self, view: int) -> None:
        if not self.pacemaker.advance(view):
            return
        self._helped.clear()
        self.votes.prune(view - 1)
        self.evidence_pool.advance(view)
        self._set_timer()
        self._propose_if_leader()

    def _set_timer(self) -> None:
        self._out.append(SetTimer(self.view, self.pacemaker.timer_ms(self.safety.high_qc.view)))

    def _local_timeout(self) -> None:
        if not self.member:
            return
        view = self.view
        own = self.pacemaker.own_timeout
        first = own is None
        if own is None:
            # Giving up on a view is durable before we say so: we never vote in it again.
            self.safety = replace(
                self.safety, last_timeout_view=max(view, self.safety.last_timeout_view)
            )
            own = Timeout.create(self.key, self.chain_id, self.epoch, view, self.safety.high_qc)
            self.pacemaker.own_timeout = own
        self._persist()
        self._out.append(Broadcast(own))
        # Our vote of this view went only to the next leader, who may be why we are stuck:
        # let everyone aggregate it, so the QC is not lost with that leader.
        if self._my_vote is not None and self._my_vote.view == view:
            self._out.append(Broadcast(self._my_vote))
            self._add_vote(self._my_vote)  # and count it here too (a no-op if counted)
        # Every time, the TC that brought us further than our high QC, for peers that missed it
        # (cut off, restarted, or their copy was lost): without it they may never reach our view.
        tc = self._newest_tc()
        if tc is not None:
            self._out.append(Broadcast(tc))
        if first:
            self._add_timeout(own)

    def _add_timeout(self, timeout: Timeout) -> None:
        tc = self.pacemaker.timeouts.add(timeout)
        if tc is not None:
            self._out.append(Broadcast(tc))
            self._process_tc(tc)
            return
        # f+1 validators gave up on a view we have not: at least one of them is honest, join.
        join = self.pacemaker.timeouts.join_view()
        if join > self.view or (join == self.view and self.pacemaker.own_timeout is None):
            self._advance(join)
            self._local_timeout()
