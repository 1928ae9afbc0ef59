"""Signature and certificate checks for everything that reaches the core.

The rules are those of ``QuorumCert.verify`` (types/block.py), for one
epoch (its set, its start certificate), with the Ed25519 check injected
(``SignatureCheck``) and the result of each certificate remembered: one QC
travels in many messages (every proposal, timeout and TC carries one) and is
verified once per node.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from p2pcity.consensus.app import SignatureCheck
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.types.block import GENESIS_VIEW, Block, QuorumCert
from p2pcity.types.consensus import Timeout, TimeoutCert, Vote

_CACHE_SIZE = 4096


class _Seen:
    """A bounded set of certificates already verified (oldest forgotten first)."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size

    def __contains__(self, item: Hashable) -> bool:
        return item in self._items

    def add(self, item: Hashable) -> None:
        self._items[item] = None
        if len(self._items) > self._size:
            self._items.popitem(last=False)


class Verifier:
    def __init__(
        self,
        chain_id: str,
        validators: ValidatorSet,
        genesis_id: bytes,
        check: SignatureCheck,
        epoch: int = 0,
        *,
        start: QuorumCert | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.epoch = epoch
        # The vote-less certificate the epoch starts from (epoch 0: the genesis QC).
        self.start = start if start is not None else QuorumCert.genesis(genesis_id)
        if self.start.epoch != epoch or self.start.votes:
            raise ValueError("an epoch starts from a vote-less certificate of that epoch")
        self.validators = validators
        self.genesis_id = genesis_id
        self._check = check
        self._qcs = _Seen(_CACHE_SIZE)
        self._tcs = _Seen(_CACHE_SIZE)

    def block(self, block: Block) -> str | None:
        """Why a proposed or fetched block is invalid on its own, or None.

        Everything but its justify QC, checked last by the caller (a signed
        block is already evidence material, whatever its QC).
        """
        header = block.header
        # Rule: the block belongs to our chain and epoch.
        if header.chain_id != self.chain_id:
            return "wrong chain"
        if header.epoch != self.epoch:
            return "wrong epoch"
        # Rule: above genesis, in a view later than its parent's, and justify names the parent.
        if header.height < 1 or header.view <= header.justify.view:
            return "malformed block"
        if header.justify.block_id != header.parent_id:
            return "malformed block"
        # Rule: proposed by a validator (whether by the leader of its view depends on its
        # parent, leader reputation: the core checks that once the parent is known).
        if header.proposer not in self.validators:
            return "not a validator"
        # Rule: the transactions are exactly those the header commits to.
        if not block.body_matches_header():
            return "body does not match header"
        # Rule: signed by its proposer.
        message = Block.signing_bytes(header.chain_id, block.id)
        if not self._check(header.proposer, message, block.signature):
            return "invalid block signature"
        return None

    def vote(self, vote: Vote) -> bool:
        # Rule: only current validators vote, in our epoch, and the signature covers every
        # field (chain, epoch, view, height, block, time).
        return (
            vote.epoch == self.epoch
            and vote.signer in self.validators
            and self._check(vote.signer, vote.signing_bytes(self.chain_id), vote.signature)
        )

    def timeout(self, timeout: Timeout) -> bool:
        """The timeout's own signature and shape; its high QC is checked by :meth:`qc`."""
        # Rule: only current validators time out, in our epoch.
        if timeout.signer not in self.validators or timeout.epoch != self.epoch:
            return False
        # Rule: an honest node's high QC is always older than the view it is in.
        if timeout.high_qc.view >= timeout.view:
            return False
        return self._check(timeout.signer, timeout.signing_bytes(self.chain_id), timeout.signature)

    def qc(self, qc: QuorumCert) -> bool:
        """True for the genesis QC or a quorum of distinct, valid validator votes."""
        if qc.view == GENESIS_VIEW:
            # Rule: the only certificate of view 0 is the vote-less one the epoch starts from
            # (genesis, or the previous epoch's last block).
            return qc == self.start
        if qc in self._qcs:
            return True
        # Rule: a certificate of our epoch.
        if qc.epoch != self.epoch:
            return False
        signers = {v.signer for v in qc.votes}
        # Rule: each validator counts once, and only current validators count.
        if len(signers) != len(qc.votes) or not all(s in self.validators for s in signers):
            return False
        # Rule: 2f+1 of them.
        if len(signers) < self.validators.quorum:
            return False
        # Rule: each vote signed every field of the QC (and its own time).
        if not all(self._check(v.signer, qc.vote_bytes(self.chain_id, v), v.signature) for v in qc.votes):
            return False
        self._qcs.add(qc)
        return True

    def tc(self, tc: TimeoutCert) -> bool:
        """2f+1 distinct validators' timeouts for ``tc.view``, and the highest QC among them."""
        if tc in self._tcs:
            return True
        # Rule: a certificate of our epoch.
        if tc.epoch != self.epoch:
            return False
        signers = {s.signer for s in tc.signatures}
        # Rule: each validator counts once, only validators count, and 2f+1 of them.
        if len(signers) != len(tc.signatures) or not all(s in self.validators for s in signers):
            return False
        if len(signers) < self.validators.quorum:
            return False
        # Rule: the carried QC is the highest one the signers reported, and it is valid.
        if max(s.high_qc_view for s in tc.signatures) != tc.high_qc.view:
            return False
        if any(s.high_qc_view >= tc.view for s in tc.signatures):
            return False
        for s in tc.signatures:
            if not self._check(s.signer, tc.signed_bytes(self.chain_id, s), s.signature):
                return False
        if not self.qc(tc.high_qc):
            return False
        self._tcs.add(tc)
        return True
