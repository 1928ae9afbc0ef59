"""Actions: what the consensus core asks its driver to do, as plain data.

``Core.handle`` returns a list of actions and the driver MUST execute them in
order: the core places ``PersistSafety`` before any vote, timeout or proposal
that relies on it, and before ``Commit``, so "durable before it leaves the
node" is a property of the list, checked by the tests, not a hope.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import ConsensusMessage, Evidence, SafetyState


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other validator."""

    message: ConsensusMessage


@dataclass(frozen=True, slots=True)
class Send:
    """Send to one validator, named by its public key."""

    to: bytes
    message: ConsensusMessage


@dataclass(frozen=True, slots=True)
class PersistSafety:
    """Write the safety state durably (fsync) before executing the next action."""

    state: SafetyState


@dataclass(frozen=True, slots=True)
class Commit:
    """These blocks are final, in height order, each the parent of the next.

    ``qc`` is the certificate that made them final (it certifies the head of
    the three-chain): with the tree it proves finality to others (an epoch's
    hand-over, ``p2pcity.types.epoch.EpochEnd``).
    """

    blocks: tuple[Block, ...]
    qc: QuorumCert | None = None


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm the one consensus timer; it replaces any earlier one. Fire ``TimerFired(view)``."""

    view: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class FetchBlock:
    """Get the block with this id from a peer (``peer`` is a hint; None: any) and feed
    ``BlockFetched``. The core asks again on its next timeout if nothing came back."""

    block_id: bytes
    peer: bytes | None = None


@dataclass(frozen=True, slots=True)
class BuildProposal:
    """We lead ``view``: assemble a block at ``height`` on ``parent_id`` justified by
    ``justify`` and answer with ``ProposalBuilt``."""

    view: int
    parent_id: bytes
    justify: QuorumCert
    height: int


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """Proof that a validator equivocated; keep it, gossip it, punish on chain."""

    evidence: Evidence


Action = (
    Broadcast
    | Send
    | PersistSafety
    | Commit
    | SetTimer
    | FetchBlock
    | BuildProposal
    | ReportEvidence
)
