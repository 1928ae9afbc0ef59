"""The simulator's checkers: what must hold in every run, whatever the faults.

- agreement: no two honest replicas commit different blocks at one height,
  and each replica's commits form one chain;
- persist-before-send: a signed vote, timeout or proposal never leaves an
  honest replica before the safety state that covers it is on its disk;
- signed once: an honest key never signs two different votes, or two
  different blocks, in one view (across crashes, restarts and syncs);
- evidence is genuine and never names an honest key;
- block time: every committed block obeys the block time rule on its parent,
  and is within the drift of the clock of an honest validator that voted
  for it (read when it voted).

Liveness (all honest replicas commit after GST) is checked by the run loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pcity.types.block import Block
from p2pcity.types.block_time import block_time_error
from p2pcity.types.consensus import (
    ConsensusMessage,
    DoubleVote,
    Evidence,
    Proposal,
    SafetyState,
    Timeout,
    Vote,
)
from tests.sim import builders


class SafetyError(AssertionError):
    """Two honest replicas committed different blocks at one height (or a chain broke), or an
    honest key signed twice in a view."""


class LivenessError(AssertionError):
    """After GST the honest replicas did not all commit new blocks in time."""


class PersistOrderError(AssertionError):
    """A signed message left a replica before the safety state that covers it was durable."""


class BlockTimeError(AssertionError):
    """A committed block's time breaks the block time rule."""


@dataclass
class Checks:
    honest_keys: set[bytes]
    drift_ms: int
    chain: dict[int, bytes] = field(default_factory=dict)  # height -> id committed by the honest
    signed: dict[tuple[bytes, str, int], bytes] = field(default_factory=dict)
    vote_clock: dict[bytes, int] = field(default_factory=dict)  # block id -> an honest voter's clock

    def sent(self, who: str, me: bytes, safety: SafetyState | None, message: ConsensusMessage) -> None:
        """An honest replica (key ``me``, disk ``safety``) is sending ``message``."""
        voted = safety.last_voted_view if safety else 0
        timed_out = safety.last_timeout_view if safety else 0
        if isinstance(message, Vote) and message.signer == me:
            if message.view > voted:
                raise PersistOrderError(f"{who} sent a vote of view {message.view}")
            self._once(who, me, "vote", message.view, message.signature)
        if isinstance(message, Timeout) and message.signer == me and message.view > timed_out:
            raise PersistOrderError(f"{who} sent a timeout of view {message.view}")
        if isinstance(message, Proposal) and message.block.header.proposer == me:
            if message.block.view > voted:
                raise PersistOrderError(f"{who} proposed in view {message.block.view}")
            self._once(who, me, "block", message.block.view, message.block.id)

    def voted(self, vote: Vote, clock_ms: int) -> None:
        """An honest validator voted, reading ``clock_ms`` on its clock."""
        self.vote_clock.setdefault(vote.block_id, clock_ms)

    def _once(self, who: str, me: bytes, kind: str, view: int, what: bytes) -> None:
        if me not in self.honest_keys:
            return  # twins share a key: their second signature is the fault under test
        first = self.signed.setdefault((me, kind, view), what)
        if first != what:
            raise SafetyError(f"{who} signed a second {kind} in view {view}")

    def evidence(self, who: str, evidence: Evidence) -> None:
        """Evidence must be genuine, and never against an honest key: an honest replica that
        restarts from its persisted state still never signs two votes or blocks in a view."""
        valid = (
            evidence.verify(builders.CHAIN) if isinstance(evidence, DoubleVote) else evidence.verify()
        )
        if not valid:
            raise AssertionError(f"{who} reported evidence that does not verify")
        if evidence.offender in self.honest_keys:
            raise SafetyError(
                f"{who} caught honest key {evidence.offender.hex()[:6]} equivocating "
                f"in view {evidence.view}"
            )

    def committed(self, who: str, tip: Block, block: Block, honest: bool) -> None:
        if block.height != tip.height + 1 or block.parent_id != tip.id:
            raise SafetyError(f"{who} committed height {block.height} not on its chain tip {tip.height}")
        if not honest:
            return
        known = self.chain.setdefault(block.height, block.id)
        if known != block.id:
            raise SafetyError(
                f"{who} committed {block.id.hex()[:12]} at height {block.height}, "
                f"another honest replica committed {known.hex()[:12]}"
            )
        late = block_time_error(block.header, tip.header, None)
        clock = self.vote_clock.get(block.id)
        if late is None and clock is not None:
            late = block_time_error(block.header, tip.header, clock, self.drift_ms)
        if late is not None:
            raise BlockTimeError(f"{who} committed height {block.height}: {late}")
