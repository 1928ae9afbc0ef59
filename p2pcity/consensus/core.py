"""The consensus core: the one writer of round state, turning events into actions.

``Core.handle(event) -> list[Action]`` is the whole interface. It never
blocks, reads a clock, draws randomness or touches I/O; everything it needs
arrives in an event and everything it wants done leaves as an action, which
the driver executes in order.

This module holds the state, the dispatch, voting, certificates and commits;
three paths live apart as mixins over that state: ``block_intake`` (blocks of
others entering the tree), ``proposer`` (the leader's half) and
``view_change`` (timers, timeouts, TCs). ``ViewChange`` declares Core's
methods as stubs that raise, so it comes after ``Proposer`` in the bases; the
newer two declare theirs for the type checker only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from p2pcity.consensus.actions import (
    Action,
    BuildProposal,
    Commit,
    PersistSafety,
    ReportEvidence,
    Send,
)
from p2pcity.consensus.aggregator import VoteAggregator
from p2pcity.consensus.app import App, SignatureCheck
from p2pcity.consensus.block_intake import BlockIntake
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.consensus.epochs import event_epoch
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
)
from p2pcity.consensus.evidence import EvidencePool
from p2pcity.consensus.pacemaker import Pacemaker
from p2pcity.consensus.proposer import Proposer
from p2pcity.consensus.reputation import DEFAULT_WINDOW, Reputation
from p2pcity.consensus.safety import safe_to_vote, three_chain
from p2pcity.consensus.sync import Synchronizer
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.consensus.view_change import ViewChange
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.block_time import (
    MAX_CLOCK_DRIFT_MS,
    block_time_error,
    vote_time,
)
from p2pcity.types.consensus import (
    Evidence,
    SafetyState,
    Vote,
)


@dataclass(frozen=True, slots=True)
class Config:
    base_timeout_ms: int = 1000
    max_backoff_exponent: int = 6  # the longest view lasts base * 64
    max_pending_blocks: int = 1024  # blocks waiting for a missing ancestor
    max_fetches: int = 256  # block ids being fetched at once
    # Heights above the committed root fetched by id (None: any). A node sets it (its syncer
    # copies what lies further up, consensus.sync.FETCH_HORIZON); a core alone must fetch all.
    fetch_horizon: int | None = None
    evidence_window: int = 256  # views of proposals and votes remembered to spot equivocation
    max_clock_drift_ms: int = MAX_CLOCK_DRIFT_MS  # the block time rule's bound (block_time)
    reputation_window: int = DEFAULT_WINDOW  # blocks judged to bench absent leaders; 0: round-robin


class Core(Proposer, ViewChange, BlockIntake):
    """Chained HotStuff for one validator.

    ``safety`` and ``root`` are what a restarted node read from its store: the
    last persisted :class:`SafetyState` and the last committed block (default:
    a fresh start from genesis); ``history`` the last committed blocks, oldest
    first, ending at ``root`` (at least ``Config.reputation_window`` of them,
    or as many as exist: leader reputation reads them); ``certified`` the
    uncommitted blocks the driver persisted with the safety record (the
    blocks of its high QC, lock, votes and proposals), in any order: they go
    back into the block tree, so that after a full-cluster restart the high
    QC's block is at hand to build on and to serve. Send :class:`Start`
    before anything else.

    ``vote_rule`` and ``commit_rule`` are the two safety rules (``safety``),
    ``time_rule`` the block time rule (``types.block_time``): class attributes so
    that a test can plug in a deliberately broken one and watch the simulator
    catch it.
    """

    vote_rule = staticmethod(safe_to_vote)
    commit_rule = staticmethod(three_chain)
    time_rule = staticmethod(block_time_error)

    def __init__(
        self,
        *,
        key: SigningKey,
        genesis: Block,
        validators: Iterable[bytes],
        app: App,
        config: Config | None = None,
        safety: SafetyState | None = None,
        root: Block | None = None,
        check: SignatureCheck = verify,
        epoch: int = 0,
        start: QuorumCert | None = None,
        history: Sequence[Block] = (),
        certified: Iterable[Block] = (),
    ) -> None:
        self.key = key
        self.me = key.public_key
        self.chain_id = genesis.header.chain_id
        self.epoch = epoch
        self.validators = ValidatorSet(validators)
        # An observer (a key outside the set) follows the chain but signs nothing: its votes
        # and timeouts count for nobody, and its own gossip validator would refuse them.
        self.member = self.me in self.validators
        self.app = app
        self.config = config or Config()
        # The certificate this epoch starts from: genesis, or the previous epoch's last block.
        self.start_qc = start if start is not None else QuorumCert.genesis(genesis.id)
        self.verifier = Verifier(
            self.chain_id, self.validators, genesis.id, check, epoch, start=self.start_qc
        )
        if safety is not None and safety.epoch > epoch:
            raise ValueError(f"the safety record is of epoch {safety.epoch}, later than {epoch}")
        # A new epoch starts a new record: its votes sign the epoch, so views start again safely.
        if safety is None or safety.epoch < epoch:
            safety = SafetyState.initial(self.start_qc)
        self.safety = safety
        self._persisted = self.safety  # what the driver has on disk
        self.tree = BlockTree(root or genesis)
        if history and history[-1].id != self.tree.root.id:
            raise ValueError("history must end at the committed root")
        self.reputation = Reputation(
            self.validators, self.config.reputation_window, history or [self.tree.root]
        )
        high_tc = self.safety.high_tc
        if high_tc is not None and high_tc.epoch != epoch:
            # A TC of another epoch proves nothing about views of this one.
            self.safety = replace(self.safety, high_tc=None)
            self._persisted = self.safety
        first_view = max(1, self.safety.high_qc.view + 1, self.safety.last_voted_view)
        first_view = max(first_view, self.safety.last_timeout_view)
        if self.safety.high_tc is not None:
            first_view = max(first_view, self.safety.high_tc.view + 1)  # the view the TC moved us to
        self.pacemaker = Pacemaker(
            self.validators, first_view, self.config.base_timeout_ms, self.config.max_backoff_exponent
        )
        self._recover(certified)
        self.votes = VoteAggregator(self.validators)
        self.evidence_pool = EvidencePool(self.config.evidence_window)
        self.evidence_pool.advance(first_view)
        self.dropped: Counter[str] = Counter()  # why messages were ignored or rejected
        self.sync = Synchronizer(
            self.config.max_pending_blocks,
            self.config.max_fetches,
            lambda: self.tree.root.height,
            self.config.fetch_horizon,
        )
        self._out: list[Action] = []
        self._building: BuildProposal | None = None  # the proposal we asked the app for
        self._my_vote: Vote | None = None
        self._helped: set[bytes] = set()  # peers in earlier views answered (view_change)
        self._now_ms: int | None = None  # the clock reading of the event being handled, if any

    # --- queries -------------------------------------------------------------

    @property
    def committed(self) -> Block:
        return self.tree.root

    @property
    def root_view(self) -> int:
        """The committed root's view in this epoch (0 while the root is the previous epoch's last block)."""
        root = self.tree.root
        return root.view if root.header.epoch == self.epoch else self.start_qc.view

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        return self.evidence_pool.found

    def block(self, block_id: bytes) -> Block | None:
        """An uncommitted (or the last committed) block, for serving peers' fetches."""
        return self.tree.get(block_id)

    # --- the one entry point -------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        self._now_ms = getattr(event, "now_ms", None)
        if not self._of_my_epoch(event):
            return []
        match event:
            case ProposalReceived(proposal, sender):
                self._on_proposal(proposal, sender)
            case VoteReceived(vote):
                self._on_vote(vote)
            case TimeoutReceived(timeout):
                self._on_timeout(timeout)
            case TimeoutCertReceived(tc):
                self._on_tc(tc)
            case TimerFired(view):
                self._on_timer(view)
            case BlockFetched(block):
                self._on_fetched(block)
            case ProposalBuilt():
                self._on_built(event)
            case Start():
                self._on_start()
        # Whatever changed (a higher QC, say) is on disk by the end of the list.
        self._persist()
        out, self._out = self._out, []
        return out

    # --- events --------------------------------------------------------------

    def _of_my_epoch(self, event: Event) -> bool:
        """Rule: messages of another epoch are refused (their signers are another set; a node
        behind an epoch catches up through sync, one ahead left this epoch for good)."""
        epoch = event_epoch(event)
        if epoch is not None and epoch != self.epoch:
            self.dropped["future epoch" if epoch > self.epoch else "past epoch"] += 1
            if epoch > self.epoch:
                # Its sender committed the block that ended our epoch; we learn that block only
                # by sync (the one node that forms its commit QC switches at once and proposes
                # nothing more in this epoch): say we are behind, so the node's syncer asks now,
                # not at its next round (1-3 s stalls of the new epoch's first view, real testnet).
                self.sync.ahead = max(self.sync.ahead, self.committed.height + 1)
            return False
        return True

    def _on_start(self) -> None:
        # Recovered blocks may complete a three-chain the crash interrupted: commit it now.
        self._chain_rules(self.safety.high_qc)
        self._set_timer()
        self._propose_if_leader()

    def _on_vote(self, vote: Vote) -> None:
        # Rule: a vote older than the previous view cannot help a QC we still need.
        if vote.view + 1 < self.view:
            self.dropped["stale vote"] += 1
            return
        if not self.votes.wants(vote):
            self.dropped["duplicate vote"] += 1
            return
        if not self.verifier.vote(vote):
            self.dropped["invalid vote"] += 1
            return
        self._report(self.evidence_pool.observe_vote(vote))
        self._add_vote(vote)

    # --- voting and certificates ---------------------------------------------

    def _may_sign_in(self, view: int) -> bool:
        return view > self.safety.last_voted_view and view > self.safety.last_timeout_view

    def _vote_if_safe(self, block: Block, parent: Block) -> None:
        # Rule: vote only in our current view (a far-future block cannot drag us along).
        if block.view != self.view or not self.member:
            return
        if not self.vote_rule(self.safety, block, self.tree):
            return
        # Rule: the block is on time (block_time): after its parent, not before the parent was
        # certified, and within the drift of our clock. No clock reading, no vote.
        now = self._now_ms
        if now is None:
            self.dropped["no clock reading"] += 1
            return
        late = self.time_rule(block.header, parent.header, now, self.config.max_clock_drift_ms)
        if late is not None:
            self.dropped[late] += 1
            return
        # Rule: the application accepts the payload (re-executed against the parent).
        if not self.app.verify_block(block, parent):
            self.dropped["payload rejected"] += 1
            return
        self.safety = replace(self.safety, last_voted_view=block.view)
        self._cast_vote(block, now)

    def _cast_vote(self, block: Block, now_ms: int) -> None:
        # The vote view and the lock this vote relies on are durable before the vote leaves.
        self._persist()
        vote = Vote.create(self.key, self.chain_id, block, vote_time(block.header, now_ms))
        self._my_vote = vote
        next_leader = self.leader_on(block.view + 1, block)
        if next_leader == self.me:
            self._report(self.evidence_pool.observe_vote(vote))
            self._add_vote(vote)
        else:
            self._out.append(Send(next_leader, vote))

    def _add_vote(self, vote: Vote) -> None:
        qc = self.votes.add(vote)
        if qc is not None:
            self._process_qc(qc)

    def _process_qc(self, qc: QuorumCert) -> None:
        """A verified QC: maybe a new high QC, a new lock, a commit, and a later view."""
        if qc.view > self.safety.high_qc.view:
            self.safety = replace(self.safety, high_qc=qc)
        self._chain_rules(qc)
        self._advance(qc.view + 1)

    def _chain_rules(self, qc: QuorumCert) -> None:
        lock, commit = self.commit_rule(self.tree, qc)
        if lock is not None and lock.view > self.safety.locked_qc.view:
            self.safety = replace(self.safety, locked_qc=lock)
        if commit is not None:
            self._persist()  # the lock that goes with this commit is durable first
            blocks = tuple(self.tree.commit(commit))
            self.reputation.committed(blocks)
            self._out.append(Commit(blocks, qc))
            self.sync.forget_older_than(self.root_view)

    # --- helpers ---------------------------------------------------------------

    def _persist(self) -> None:
        if self.safety is not self._persisted:
            self._out.append(PersistSafety(self.safety))
            self._persisted = self.safety

    def _report(self, evidence: Evidence | None) -> None:
        if evidence is not None:
            self._out.append(ReportEvidence(evidence))

    def _drop(self, reason: str) -> bool:
        self.dropped[reason] += 1
        return False
