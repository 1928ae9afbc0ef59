"""BFT time: the one rule that bounds a block's timestamp, from below as well as above.

Grant expiry (and everything else time-dependent in the ledger) is judged at
block time, so no leader may choose it freely. A block ``b`` on ``parent``,
justified by the QC ``b.justify`` (whose 2f+1 votes each carry the signed
clock reading of its voter), is on time when:

1. ``b.timestamp_ms > parent.timestamp_ms``: time strictly increases along
   the chain;
2. ``b.timestamp_ms >= certified_time(b.justify)``, the lower median of the
   voters' signed times: with at most f byzantine voters among 2f+1 or more,
   that median lies between the earliest and the latest honest time, so the
   block cannot be older than the moment an honest validator certified its
   parent (and f liars cannot drag it anywhere);
3. at vote time only, within ``drift_ms`` of the voter's own clock, in both
   directions: ``now - drift <= b.timestamp_ms <= now + drift``. An honest
   validator never votes for a block back-dated (say, after a stall, to
   revive an expired grant) or future-dated by more than the drift; since
   every QC holds f+1 honest votes, no certified block is.

Rules 1 and 2 are facts about the chain, checkable by anyone at any time (a
syncing node, a light client); rule 3 needs the clock, so it binds when a
vote is signed. This is CometBFT's BFT time (median of the signed vote
times) for the lower bound, with the clock check of its proposer-based
timestamps and of Aptos (which waits for a block's time and rejects the
future) for the bound on both sides.

An honest proposer picks :func:`proposal_time`, an honest voter signs
:func:`vote_time`; both satisfy the rule whenever the honest clocks agree
within the drift. Pure: the clock reading is an argument.
"""

from __future__ import annotations

from p2pcity.types.block import BlockHeader, QuorumCert

# How far apart (ms) the clocks of honest validators, plus the time a proposal takes to reach
# a voter, may be. Larger tolerates worse clocks; smaller narrows what a leader may choose.
MAX_CLOCK_DRIFT_MS = 10_000


def certified_time(qc: QuorumCert) -> int:
    """The lower median of the times signed by the QC's voters (0 for the genesis QC)."""
    if not qc.votes:
        return 0
    times = sorted(v.timestamp_ms for v in qc.votes)
    return times[(len(times) - 1) // 2]


def block_time_error(
    header: BlockHeader, parent: BlockHeader, now_ms: int | None, drift_ms: int = MAX_CLOCK_DRIFT_MS
) -> str | None:
    """Why ``header``'s time breaks the rule on ``parent``, or None when it is on time.

    ``now_ms`` is the local clock reading when judging whether to vote; None
    when checking history (rules 1 and 2 only).
    """
    ts = header.timestamp_ms
    # Rule 1: strictly after the parent.
    if ts <= parent.timestamp_ms:
        return "block time not after its parent's"
    # Rule 2: not before the median time the parent's certifiers signed.
    if ts < certified_time(header.justify):
        return "block time before its parent was certified"
    if now_ms is not None:
        # Rule 3: within the drift of our clock, in both directions.
        if ts > now_ms + drift_ms:
            return "block time in the future"
        if ts < now_ms - drift_ms:
            return "block time in the past"
    return None


def proposal_time(parent: BlockHeader, justify: QuorumCert, now_ms: int) -> int:
    """The time an honest leader gives its block: its clock, unless the rule needs later."""
    return max(now_ms, parent.timestamp_ms + 1, certified_time(justify))


def vote_time(header: BlockHeader, now_ms: int) -> int:
    """The time an honest voter signs: its clock, never earlier than the block it votes for."""
    return max(now_ms, header.timestamp_ms)
