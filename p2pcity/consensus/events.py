"""Events: everything that can happen to the consensus core, as plain data.

The driver (node or simulator) turns network messages, timer expiries and
replies to the core's own requests into these and feeds them, one at a time,
to ``Core.handle``. Nothing else reaches the core, not even the time: the
events that may lead to a vote carry the driver's clock reading (``now_ms``,
milliseconds since the Unix epoch), which the block time rule needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pcity.types.block import Block, BlockHeader
from p2pcity.types.consensus import (
    ConsensusMessage,
    Proposal,
    Timeout,
    TimeoutCert,
    Vote,
    decode_message,
)
from p2pcity.types.tx import Transaction


@dataclass(frozen=True, slots=True)
class Start:
    """Sent once after construction (a fresh start or a restart from the persisted state)."""


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    proposal: Proposal
    sender: bytes | None = None  # the peer it came from: a hint for fetching missing parents
    now_ms: int = field(kw_only=True)  # the local clock when it arrived


@dataclass(frozen=True, slots=True)
class VoteReceived:
    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutReceived:
    timeout: Timeout


@dataclass(frozen=True, slots=True)
class TimeoutCertReceived:
    tc: TimeoutCert


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The timer set by the last ``SetTimer`` action expired; ``view`` is the one it was set for."""

    view: int


@dataclass(frozen=True, slots=True)
class BlockFetched:
    """A block the core asked for with ``FetchBlock`` (unsolicited blocks are ignored).

    It may release a waiting proposal that we then vote for: hence the clock.
    """

    block: Block
    now_ms: int = field(kw_only=True)  # the local clock when it arrived


@dataclass(frozen=True, slots=True)
class ProposalBuilt:
    """The application's answer to ``BuildProposal``: an unsigned header and its transactions.

    The core checks that the header is the one it asked for (view, parent,
    justify, height, proposer) and signs it with the validator key: the key
    stays inside the core, next to the safety state that decides when it may sign.
    """

    header: BlockHeader
    txs: tuple[Transaction, ...]


Event = (
    Start
    | ProposalReceived
    | VoteReceived
    | TimeoutReceived
    | TimeoutCertReceived
    | TimerFired
    | BlockFetched
    | ProposalBuilt
)


def message_event(message: ConsensusMessage, sender: bytes | None = None, *, now_ms: int) -> Event:
    """The event for a consensus message received from the network at ``now_ms``."""
    if isinstance(message, Proposal):
        return ProposalReceived(message, sender, now_ms=now_ms)
    if isinstance(message, Vote):
        return VoteReceived(message)
    if isinstance(message, Timeout):
        return TimeoutReceived(message)
    return TimeoutCertReceived(message)


def event_from_bytes(data: bytes, sender: bytes | None = None, *, now_ms: int) -> Event:
    """Decode untrusted bytes into an event; raises ``DecodeError`` for anything malformed."""
    return message_event(decode_message(data), sender, now_ms=now_ms)
