"""Collecting votes into QCs and timeouts into TCs.

Each collector keeps only the latest message of each validator: an honest
validator's views only grow, so nothing is lost, and a byzantine one cannot
fill our memory by signing messages for a million views.
"""

from __future__ import annotations

from p2pcity.consensus.validators import ValidatorSet
from p2pcity.types.block import QuorumCert, VoteSignature
from p2pcity.types.consensus import Timeout, TimeoutCert, TimeoutSignature, Vote

# Votes are grouped by what they certify; every part of the key is signed by the voter, so a
# forged copy of an honest vote fails verification before it reaches the aggregator.
_VoteKey = tuple[int, int, bytes, int]  # (epoch, view, block id, height)


class VoteAggregator:
    def __init__(self, validators: ValidatorSet) -> None:
        self._validators = validators
        self._latest: dict[bytes, Vote] = {}
        self._buckets: dict[_VoteKey, dict[bytes, Vote]] = {}

    def wants(self, vote: Vote) -> bool:
        """Worth verifying? False for a duplicate or an older vote of the same signer.

        A second vote of the same view for another block is wanted: it is
        verified so that the equivocation can be proven, then ignored here.
        """
        latest = self._latest.get(vote.signer)
        return latest is None or vote.view > latest.view or (
            vote.view == latest.view and vote.block_id != latest.block_id
        )

    def add(self, vote: Vote) -> QuorumCert | None:
        """Add a verified vote; return the QC the moment its quorum is reached (once)."""
        latest = self._latest.get(vote.signer)
        if latest is not None:
            if vote.view <= latest.view:
                return None  # a duplicate, an older vote, or an equivocation: first vote counts
            old = self._buckets.get(_key(latest))
            if old is not None and len(old) < self._validators.quorum:
                old.pop(vote.signer, None)
        self._latest[vote.signer] = vote
        key = _key(vote)
        bucket = self._buckets.setdefault(key, {})
        bucket[vote.signer] = vote
        if len(bucket) != self._validators.quorum:
            return None
        votes = tuple(
            VoteSignature(v.signer, v.timestamp_ms, v.signature)
            for v in sorted(bucket.values(), key=_signer)
        )
        return QuorumCert(vote.epoch, vote.view, vote.block_id, vote.height, votes)

    def prune(self, below_view: int) -> None:
        self._buckets = {k: v for k, v in self._buckets.items() if k[1] >= below_view}


class TimeoutAggregator:
    def __init__(self, validators: ValidatorSet) -> None:
        self._validators = validators
        self._latest: dict[bytes, Timeout] = {}
        self._buckets: dict[int, dict[bytes, Timeout]] = {}

    def wants(self, timeout: Timeout) -> bool:
        latest = self._latest.get(timeout.signer)
        return latest is None or timeout.view > latest.view

    def add(self, timeout: Timeout) -> TimeoutCert | None:
        """Add a verified timeout; return the TC the moment its quorum is reached (once)."""
        latest = self._latest.get(timeout.signer)
        if latest is not None:
            if timeout.view <= latest.view:
                return None
            old = self._buckets.get(latest.view)
            if old is not None and len(old) < self._validators.quorum:
                old.pop(timeout.signer, None)
        self._latest[timeout.signer] = timeout
        bucket = self._buckets.setdefault(timeout.view, {})
        bucket[timeout.signer] = timeout
        if len(bucket) != self._validators.quorum:
            return None
        timeouts = sorted(bucket.values(), key=_signer)
        high_qc = max((t.high_qc for t in timeouts), key=lambda qc: qc.view)
        signatures = tuple(
            TimeoutSignature(t.signer, t.high_qc.view, t.signature) for t in timeouts
        )
        return TimeoutCert(timeout.epoch, timeout.view, high_qc, signatures)

    def join_view(self) -> int:
        """The highest view that f+1 validators have timed out in or beyond (0 if none).

        f+1 of them include an honest one, so that view is genuinely stuck and a
        lagging node may join it without a certificate (Bracha-style amplification).
        """
        needed = self._validators.tolerance + 1
        if len(self._latest) < needed:
            return 0
        views = sorted((t.view for t in self._latest.values()), reverse=True)
        return views[needed - 1]

    def prune(self, below_view: int) -> None:
        self._buckets = {v: b for v, b in self._buckets.items() if v >= below_view}


def _signer(message: Vote | Timeout) -> bytes:
    return message.signer


def _key(vote: Vote) -> _VoteKey:
    return (vote.epoch, vote.view, vote.block_id, vote.height)
