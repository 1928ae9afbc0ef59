"""The epoch rules: where an epoch ends, and how a hand-over (:class:`EpochEnd`) is checked.

One definition each, imported by the core's driver (``node.replica``), the
sync path (``node.sync``), the simulators and the light client:

- :func:`ends_epoch`: an epoch ends at the first committed block after which
  the committed validator-set version differs from the epoch's number. Blocks
  of the old epoch above it are never committed (every honest node stops at
  the same block: the committed chain is the same everywhere);
- :func:`epoch_end_problem`: why an :class:`EpochEnd` does not prove its
  ``last`` block final under the set of its epoch (None: it does);
- :func:`follow`: from a trusted set, the set of each later epoch, moving on
  only through hand-overs signed by the set before.

Pure: no I/O, the signature check is injected.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from p2pcity.consensus.app import SignatureCheck
from p2pcity.consensus.events import (
    Event,
    ProposalReceived,
    TimeoutCertReceived,
    TimeoutReceived,
    VoteReceived,
)
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.types.block import BlockHeader
from p2pcity.types.epoch import EpochEnd, start_qc


def event_epoch(event: Event) -> int | None:
    """The epoch a message event names (None: not a message, or a fetched block)."""
    match event:
        case ProposalReceived(proposal):
            return proposal.block.header.epoch
        case VoteReceived(vote) | TimeoutReceived(vote):
            return vote.epoch
        case TimeoutCertReceived(tc):
            return tc.epoch
    return None


def ends_epoch(epoch: int, committed_version: int) -> bool:
    """Whether the block just committed in ``epoch`` ended it (the set version moved)."""
    return committed_version != epoch


def _certifies(header: BlockHeader, parent: BlockHeader) -> bool:
    qc = header.justify
    return (
        header.parent_id == parent.id
        and qc.block_id == parent.id
        and qc.view == parent.view
        and qc.height == parent.height
        and header.height == parent.height + 1
        and header.view > parent.view
    )


def epoch_end_problem(proof: EpochEnd, verifier: Verifier) -> str | None:
    """Why ``proof`` does not show ``proof.last`` final in the verifier's epoch, or None."""
    epoch = verifier.epoch
    # Rule: the hand-over is signed by the set of the epoch it ends, and leads to a later one.
    if proof.epoch != epoch or proof.next_epoch <= epoch:
        return f"proof of epoch {proof.epoch} -> {proof.next_epoch}, expected one ending {epoch}"
    headers = (proof.last, *proof.chain)
    # Rule: every header is of this chain and epoch, each extends the one before it.
    if any(h.chain_id != verifier.chain_id or h.epoch != epoch for h in headers):
        return "a header of another chain or epoch"
    if any(not _certifies(child, parent) for parent, child in itertools.pairwise(headers)):
        return "headers do not form a chain"
    # Rule: a direct three-chain b0 <- b1 <- b2 at the end, b2 certified by ``qc``.
    if len(headers) < 3:
        return "no three-chain"
    b0, b1, b2 = headers[-3:]
    if not (b1.view == b0.view + 1 and b2.view == b1.view + 1):
        return "the last three views are not consecutive"
    qc = proof.qc
    if qc.block_id != b2.id or qc.view != b2.view or qc.height != b2.height:
        return "the QC does not certify the last header"
    # Rule: the three certificates are quorums of the epoch's own set.
    for cert in (b1.justify, b2.justify, qc):
        if not verifier.qc(cert):
            return "a certificate is not a quorum of the epoch's validators"
    # Rule: the next set is a set (at least one validator, no duplicates, sorted).
    keys = proof.next_validators
    if not keys or tuple(sorted(set(keys))) != keys:
        return "the next validator set is empty or not sorted"
    return None


def next_verifier(proof: EpochEnd, chain_id: str, genesis_id: bytes, check: SignatureCheck) -> Verifier:
    """The verifier of the epoch ``proof`` hands over to (its start QC names ``proof.last``)."""
    qc = start_qc(proof.next_epoch, proof.last.id, proof.last.height)
    return Verifier(
        chain_id, ValidatorSet(proof.next_validators), genesis_id, check, proof.next_epoch, start=qc
    )


def follow(start: Verifier, proofs: Iterable[EpochEnd], check: SignatureCheck) -> Verifier:
    """The verifier of the last epoch reached through ``proofs``; raises ValueError at the first
    hand-over the set before it did not sign."""
    current = start
    for proof in proofs:
        problem = epoch_end_problem(proof, current)
        if problem is not None:
            raise ValueError(f"epoch {current.epoch}: {problem}")
        current = next_verifier(proof, current.chain_id, current.genesis_id, check)
    return current


__all__ = ["ends_epoch", "epoch_end_problem", "event_epoch", "follow", "next_verifier"]
