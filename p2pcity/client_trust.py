"""What a light client trusts, and how that trust moves from epoch to epoch.

A :class:`Trust` is a validator set the client believes signs one epoch of one
chain: from the genesis file (epoch 0), from a waypoint (``height:block-id:epoch``,
obtained out of band), or from a trust file a previous command saved. It moves
to a later epoch only through the node's epoch-change proofs (``GET /epochs``,
:mod:`p2pcity.api.epochs`), each step checked, in order:

1. the hand-over (``EpochEnd``) is final under the set the client holds:
   :func:`p2pcity.consensus.epochs.follow`, the rule every node applies when it
   syncs (a forged certificate, a proof of a retired set, a skipped epoch fail here);
2. the set it hands over to is the one the state of its last block holds: a
   state proof of the validator set against that (now certified) header's state
   root, since ``next_validators`` and ``next_epoch`` are not signed by anyone.

A waypoint is checked the same way: the node's header at the waypoint's height
must be the waypoint's block, and the set is read from a proof against that
header. Pure apart from the trust file (:func:`load` / :meth:`Trust.save`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from p2pcity.chain import proof
from p2pcity.chain.entries import ValidatorSet as SetEntry
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.state import VALIDATOR_SET
from p2pcity.client import ClientError
from p2pcity.codec import DecodeError, decode
from p2pcity.consensus import epochs
from p2pcity.consensus.app import SignatureCheck
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import verify as ed25519_verify
from p2pcity.types.block import BlockHeader, QuorumCert
from p2pcity.types.epoch import EpochEnd, Waypoint, start_qc


class VerificationError(ClientError):
    """What a node sent does not prove what it claims: the node is lying or broken."""


def fail(why: str) -> VerificationError:
    return VerificationError(f"verification failed: {why}")


@dataclass(slots=True)
class Trust:
    """The set the client trusts for ``epoch`` of ``chain_id``, and the highest height it verified.

    ``start_id`` / ``start_height``: the block the epoch starts from (the genesis for epoch 0,
    else the previous epoch's last block), which its vote-less start certificate names.
    """

    chain_id: str
    genesis_id: bytes
    validators: tuple[bytes, ...]
    epoch: int = 0
    verified_height: int = 0
    start_id: bytes = b""
    start_height: int = 0

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> Trust:
        block_id = genesis.block().id
        return cls(genesis.chain_id, block_id, genesis.validators, start_id=block_id)

    def verifier(self, check: SignatureCheck = ed25519_verify) -> Verifier:
        """The consensus verifier of the trusted epoch (its set and start certificate)."""
        start = (
            QuorumCert.genesis(self.genesis_id)
            if self.epoch == 0
            else start_qc(self.epoch, self.start_id, self.start_height)
        )
        return Verifier(
            self.chain_id, ValidatorSet(self.validators), self.genesis_id, check, self.epoch, start=start
        )

    def save(self, path: Path) -> None:
        """Write the trust file (so the next command starts from this epoch and height)."""
        raw = asdict(self)
        raw.update(
            genesis_id=self.genesis_id.hex(),
            start_id=self.start_id.hex(),
            validators=[v.hex() for v in self.validators],
        )
        path.write_text(json.dumps(raw, indent=2) + "\n")


def load(path: Path) -> Trust:
    """A trust file written by :meth:`Trust.save` (ValueError when it is not one)."""
    try:
        raw = json.loads(path.read_text())
        return Trust(
            str(raw["chain_id"]),
            bytes.fromhex(raw["genesis_id"]),
            tuple(bytes.fromhex(v) for v in raw["validators"]),
            int(raw["epoch"]),
            int(raw["verified_height"]),
            bytes.fromhex(raw["start_id"]),
            int(raw["start_height"]),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a trust file: {exc}") from exc


def parse_waypoint(text: str) -> tuple[int, bytes, int]:
    """``height:block-id-hex[:epoch]`` (``types.epoch.Waypoint.parse``, the one parser) -> its parts."""
    waypoint = Waypoint.parse(text)
    return waypoint.height, waypoint.block_id, waypoint.epoch


def _hex(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError) as exc:
        raise fail(f"{what} is not hex") from exc


def proven_set(header: BlockHeader, item: Any) -> SetEntry:
    """The validator set the state of ``header`` holds, from a pinned proof in an /epochs answer."""
    if not isinstance(item, dict) or not isinstance(item.get("siblings"), list):
        raise fail("no validator-set proof")
    if len(item["siblings"]) > proof.MAX_DEPTH:
        raise fail("malformed validator-set proof")
    tree_root = _hex(item.get("tree_root"), "the tree root")
    aux_root = _hex(item.get("aux_root"), "the aux root")
    # Rule: the roots are the ones this header's state root binds.
    if proof.state_root(tree_root, aux_root) != header.state_root:
        raise fail(f"the validator-set proof is not of the state of the block at height {header.height}")
    value = _hex(item.get("value"), "the validator set")
    state_proof = proof.StateProof(
        _hex(item.get("leaf_key"), "the leaf key"),
        _hex(item.get("leaf_value"), "the leaf value"),
        tuple(_hex(s, "a sibling") for s in item["siblings"]),
    )
    try:
        proof.verify(state_proof, tree_root, VALIDATOR_SET, value)
        return decode(SetEntry, value)
    except (proof.ProofError, DecodeError) as exc:
        raise fail(f"the validator set at height {header.height}: {exc}") from exc


def hand_over_problem(end: EpochEnd, item: Any) -> str | None:
    """Why the set ``end`` hands over to is not the one its last block's state holds, or None."""
    held = proven_set(end.last, item)
    if held.version == end.next_epoch and held.validators == end.next_validators:
        return None
    return (
        f"the hand-over of epoch {end.epoch} names epoch {end.next_epoch} and "
        f"{len(end.next_validators)} validators; the state of its last block holds set "
        f"version {held.version} of {len(held.validators)}"
    )


def passes_through(header: BlockHeader, height: int, block_id: bytes) -> bool:
    """Whether ``header`` is the waypoint's block (its id commits to the chain id and all history)."""
    return header.id == block_id and header.height == height


def advance(trust: Trust, answer: Any, check: SignatureCheck = ed25519_verify) -> None:
    """Move ``trust`` through the hand-overs of an ``/epochs?from=trust.epoch`` answer."""
    ends = answer.get("ends") if isinstance(answer, dict) else None
    if not isinstance(ends, list):
        raise fail("the node sent no epoch-change proofs")
    current = trust.verifier(check)
    for item in ends:
        try:
            end = EpochEnd.decode(_hex(item.get("end") if isinstance(item, dict) else None, "a hand-over"))
        except DecodeError as exc:
            raise fail(f"malformed epoch-change proof: {exc}") from exc
        # Rule: final under the set we hold (the one definition every syncing node applies).
        try:
            following = epochs.follow(current, [end], check)
        except ValueError as exc:
            raise fail(f"epoch-change proof: {exc}") from exc
        # Rule: the set handed over is the one the state of the (now proven final) last block holds.
        problem = hand_over_problem(end, item.get("validators"))
        if problem is not None:
            raise fail(problem)
        current = following
        trust.epoch, trust.validators = end.next_epoch, end.next_validators
        trust.start_id, trust.start_height = end.last.id, end.last.height
        trust.verified_height = max(trust.verified_height, end.last.height)


def anchor(height: int, block_id: bytes, epoch: int, answer: Any) -> Trust:
    """The trust of a waypoint, from an ``/epochs?from=epoch`` answer that must pass through it."""
    start = answer.get("start") if isinstance(answer, dict) else None
    if not isinstance(start, dict):
        raise fail("the node sent no start of the waypoint's epoch")
    try:
        header = decode(BlockHeader, _hex(start.get("header"), "the start header"))
    except DecodeError as exc:
        raise fail(f"malformed start header: {exc}") from exc
    # Rule: the node's chain passes through the waypoint (this very block at this height).
    if not passes_through(header, height, block_id) or start.get("epoch") != epoch:
        raise fail(
            f"the node's chain does not pass through the waypoint: its epoch {start.get('epoch')} "
            f"starts from block {header.id.hex()[:16]} at height {header.height}, not "
            f"{block_id.hex()[:16]} at {height} (another chain, or a lying node)"
        )
    held = proven_set(header, start.get("validators"))
    # Rule: the set of the waypoint's epoch is the one its block's state holds.
    if held.version != epoch:
        raise fail(f"the waypoint's block holds validator set version {held.version}, not {epoch}")
    genesis_id = block_id if epoch == 0 else b""
    return Trust(header.chain_id, genesis_id, held.validators, epoch, height, block_id, height)


__all__ = [
    "Trust",
    "VerificationError",
    "advance",
    "anchor",
    "fail",
    "hand_over_problem",
    "load",
    "parse_waypoint",
    "passes_through",
    "proven_set",
]
