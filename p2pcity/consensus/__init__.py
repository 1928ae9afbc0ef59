"""Chained HotStuff as a pure state machine: the consensus of p2pcity.

Owns the consensus state machine and nothing else:

- ``core``: ``Core``, the one writer of round state (happy path: proposal ->
  vote -> QC -> commit), with three mixins over its state:
  ``block_intake`` (proposed and fetched blocks entering the tree),
  ``proposer`` (the leader's half: who leads, building and signing a block)
  and ``view_change`` (the unhappy path: timers, timeouts, TCs, view
  synchronisation);
- ``safety``: the vote rule and the three-chain commit rule, a few lines each;
- the block time rule (BFT time) it applies is ``p2pcity.types.block_time``, one pure
  function the ledger (``chain``) applies too;
- ``reputation``: who leads a view, from the chain being extended;
- ``block_tree`` (blocks above the last committed one), ``sync`` (blocks
  waiting for a missing parent, fetches), ``aggregator`` (votes -> QC,
  timeouts -> TC), ``pacemaker`` (view, back-off), ``verifier``
  (every signature and certificate), ``evidence`` (equivocation proofs),
  ``validators``, ``epochs`` (where an epoch ends, hand-over proofs);
  ``events``/``actions``, the whole interface.

Block time. Grant expiry is judged at block time, so the leader must not pick
it freely. A block is on time when it is (1) strictly after its parent, (2)
not before ``certified_time(justify)``, the lower median of the times signed
by the voters of its parent's QC (f liars among 2f+1 cannot move it outside
the honest times), and (3), when a validator decides to vote, within
``MAX_CLOCK_DRIFT_MS`` (10 s) of its own clock in both directions. (1) and (2)
are checkable from the chain by anyone; (3) binds at vote time, and every QC
holds f+1 honest votes, so no certified block is back- or future-dated by more
than the drift. The clock reading arrives with ``ProposalReceived`` and
``BlockFetched`` (``now_ms``); the core never reads a clock.

Leaders. The leader of view v for a block extending b is the round-robin
leader among the validators not benched in b's window (the last 10 blocks
ending at b): benched are those that neither proposed nor signed a QC in it,
at most f, only once the window is full. Every node derives it from the same
blocks, so all agree; a restarted core needs the last committed blocks
(``Core(history=...)``).

Messages, the safety state and evidence are data in ``p2pcity.types.consensus``.

Imports only ``p2pcity.types``, ``p2pcity.codec`` and ``p2pcity.crypto``;
never trio, libp2p, rocksdict, sockets, clocks or randomness. That is what
lets a deterministic simulator (tests/sim) replay thousands of schedules, and
the node run the very same code.

The seam, in one picture::

    driver (node or simulator)                    Core (this package)
    ------------------------------------------    ----------------------------------
    network message / timer / reply   --event-->  Core.handle(event)
    execute actions, IN ORDER         <--list---  [PersistSafety, Broadcast, Send,
                                                   Commit, SetTimer, FetchBlock,
                                                   BuildProposal, ReportEvidence]

- Events (``events``): ``Start``, ``ProposalReceived``, ``VoteReceived``,
  ``TimeoutReceived``, ``TimeoutCertReceived``, ``TimerFired``,
  ``BlockFetched``, ``ProposalBuilt``.
- Actions (``actions``): the driver executes them in order; ``PersistSafety``
  comes before any vote, timeout or proposal that depends on it and before
  ``Commit``, so the driver must make it durable before going on.
- The application (``app.App``) is never called for I/O: to lead a view the
  core emits ``BuildProposal(view, parent_id, justify, height)``; the
  application assembles transactions, executes them speculatively, fills in
  ``tx_root``/``state_root``/``timestamp_ms`` and answers ``ProposalBuilt(header,
  txs)``; the core checks the header is the one it asked for and signs it (the
  key never leaves the core). Before voting, the core calls the deterministic
  ``App.verify_block(block, parent)``.
- Restart: construct ``Core(safety=<last PersistSafety>, root=<last committed
  block>, history=<the last committed blocks, ending at root>)`` and send
  ``Start``. The core resumes in a view no lower than any
  it voted or timed out in, so it never signs a conflicting vote, and fetches
  what it lacks from peers.
- Serving peers: the driver answers block requests from ``Core.block(id)``
  (uncommitted blocks) or from its block store (committed ones).

Epochs. A core runs one epoch (``epochs``, ``p2pcity.types.epoch``): one
validator set, its start certificate (``Core(epoch=, start=)``: the vote-less
view-0 QC of the previous epoch's last block; genesis for epoch 0), views
from 1, and a safety record of its own (a record of an earlier epoch is
replaced, never one of a later). Messages of another epoch are refused
before anything else. When a committed block ends the epoch, the driver
stops executing the old core's actions and builds the core of the next
epoch from its store (``node.replica``, ``node.recovery``).

Not here: state sync for a node that is thousands of blocks behind (the
node's syncer fetches committed blocks; the core fetches parents one by one).
"""

from p2pcity.consensus.actions import (
    Action,
    Broadcast,
    BuildProposal,
    Commit,
    FetchBlock,
    PersistSafety,
    ReportEvidence,
    Send,
    SetTimer,
)
from p2pcity.consensus.app import App, SignatureCheck
from p2pcity.consensus.core import Config, Core
from p2pcity.consensus.events import (
    BlockFetched,
    Event,
    ProposalBuilt,
    ProposalReceived,
    Start,
    TimeoutCertReceived,
    TimeoutReceived,
    TimerFired,
    VoteReceived,
    event_from_bytes,
    message_event,
)
from p2pcity.consensus.validators import ValidatorSet

__all__ = [
    "Action",
    "App",
    "BlockFetched",
    "Broadcast",
    "BuildProposal",
    "Commit",
    "Config",
    "Core",
    "Event",
    "FetchBlock",
    "PersistSafety",
    "ProposalBuilt",
    "ProposalReceived",
    "ReportEvidence",
    "Send",
    "SetTimer",
    "SignatureCheck",
    "Start",
    "TimeoutCertReceived",
    "TimeoutReceived",
    "TimerFired",
    "ValidatorSet",
    "VoteReceived",
    "event_from_bytes",
    "message_event",
]
