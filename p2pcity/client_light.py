"""The light client: reads state from one node and believes only what proofs show.

    trust = Trust.from_genesis(Genesis.load("genesis.json"))
    with LightClient("http://127.0.0.1:8700", trust) as node:
        entry = node.record("land/parcel-7")      # RecordEntry, or None when proven absent

A read asks for ``?proof=true`` (:mod:`p2pcity.api.proofs`) and checks, in order
(:func:`verify_envelope`, pure): the header is of the trusted chain and epoch; the QC
certifies that very header and is signed by a quorum of the epoch's validator set (the
consensus verifier's rule, ``consensus.verifier.Verifier.qc``); the header's state root
binds the two roots offered; each key's proof hashes to the tree root, showing the value
or its absence; the height is not below one this client verified before. Any failure is a
:class:`VerificationError` with one line saying what the node got wrong.

Trust starts from the genesis file or a waypoint (:mod:`p2pcity.client_trust`). When
a header is of a later epoch than the one trusted, the client first follows the node's
epoch-change proofs (``GET /epochs``), each checked against the set before it; a
header of an epoch already left behind is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from p2pcity.chain import proof
from p2pcity.chain.entries import DatasetEntry, DistrictEntry, GrantEntry, RecordEntry, ValidatorSet
from p2pcity.chain.state import (
    VALIDATOR_SET,
    dataset_key,
    district_key,
    grant_key,
    nonce_key,
    record_key,
)
from p2pcity.client import Client
from p2pcity.client_trust import Trust, VerificationError, advance, anchor, fail, parse_waypoint
from p2pcity.codec import DecodeError, decode
from p2pcity.types.block import BlockHeader, QuorumCert

T = TypeVar("T")
MAX_EPOCH_PAGES = 1024  # /epochs pages followed for one read (64 hand-overs each)


@dataclass(frozen=True, slots=True)
class Verified:
    height: int
    header: BlockHeader
    values: dict[bytes, bytes | None]


def _hex(value: Any, what: str, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError) as exc:
        raise VerificationError(f"verification failed: {what} is not hex") from exc
    if size is not None and len(raw) != size:
        raise VerificationError(f"verification failed: {what} is not {size} bytes")
    return raw


def envelope_header(env: Any) -> tuple[BlockHeader, QuorumCert]:
    """The header and QC of a proof envelope, decoded (not yet verified)."""
    if not isinstance(env, dict) or not isinstance(env.get("entries"), list):
        raise fail("the node sent no proof")
    try:
        return decode(BlockHeader, _hex(env.get("header"), "the header")), decode(
            QuorumCert, _hex(env.get("qc"), "the QC")
        )
    except DecodeError as exc:
        raise fail(f"malformed header or QC: {exc}") from exc


def verify_envelope(trust: Trust, env: Any, keys: Sequence[bytes]) -> Verified:
    """Check a proof envelope for ``keys`` against ``trust``; return the proven values."""
    header, qc = envelope_header(env)
    # Rule: a header of the trusted chain, in the epoch whose validator set we hold.
    if header.chain_id != trust.chain_id:
        raise fail(f"the header is of chain {header.chain_id!r}, not {trust.chain_id!r}")
    if header.epoch != trust.epoch:
        raise fail(
            f"the header is of epoch {header.epoch}; this client holds the validator set of "
            f"epoch {trust.epoch}" + (" (a retired set)" if header.epoch < trust.epoch else "")
        )
    # Rule: the QC certifies this very header...
    if qc.block_id != header.id or qc.height != header.height or qc.view != header.view:
        raise fail("the QC certifies another block than the header")
    if qc.epoch != header.epoch:
        raise fail(f"the QC is of epoch {qc.epoch}, the header of epoch {header.epoch}")
    # ...and carries a quorum of the epoch's validators' signatures (the consensus rule).
    if not trust.verifier().qc(qc):
        raise fail(
            f"the QC is not signed by a quorum of the validators of epoch {trust.epoch} "
            "(forged, or of another validator set)"
        )
    # Rule: the two roots offered are the ones the header's state root binds.
    tree_root = _hex(env.get("tree_root"), "the tree root", 32)
    aux_root = _hex(env.get("aux_root"), "the aux root", 32)
    if proof.state_root(tree_root, aux_root) != header.state_root:
        raise VerificationError("verification failed: the roots offered are not the header's state root")
    entries = env["entries"]
    if len(entries) != len(keys):
        raise VerificationError(f"verification failed: {len(entries)} proofs for {len(keys)} keys")
    values: dict[bytes, bytes | None] = {}
    for key, entry in zip(keys, entries, strict=True):
        values[key] = _verify_entry(tree_root, key, entry)
    # Rule: never go back in time (a replayed, older answer hides what came after it).
    if header.height < trust.verified_height:
        raise VerificationError(
            f"verification failed: stale answer at height {header.height}, below height "
            f"{trust.verified_height} this client already verified"
        )
    trust.verified_height = header.height
    return Verified(header.height, header, values)


def _verify_entry(tree_root: bytes, key: bytes, entry: Any) -> bytes | None:
    if not isinstance(entry, dict) or entry.get("key") != key.hex():
        raise VerificationError(f"verification failed: no proof for key {key!r}")
    siblings = entry.get("siblings")
    if not isinstance(siblings, list) or len(siblings) > proof.MAX_DEPTH:
        raise VerificationError("verification failed: malformed proof siblings")
    raw_value = entry.get("value")
    value = None if raw_value is None else _hex(raw_value, "the value")
    state_proof = proof.StateProof(
        _hex(entry.get("leaf_key", ""), "the leaf key"),
        _hex(entry.get("leaf_value", ""), "the leaf value"),
        tuple(_hex(s, "a sibling", 32) for s in siblings),
    )
    try:
        proof.verify(state_proof, tree_root, key, value)
    except proof.ProofError as exc:
        raise VerificationError(f"verification failed for {key.decode(errors='replace')!r}: {exc}") from exc
    return value


def _entry(kind: type[T], raw: bytes | None) -> T | None:
    if raw is None:
        return None
    try:
        return decode(kind, raw)
    except DecodeError as exc:  # proven, so written by the chain itself: not a node's lie
        raise VerificationError(f"a proven {kind.__name__} does not decode: {exc}") from exc


class LightClient:
    """A client of one node that verifies every read (blocking)."""

    def __init__(self, url: str, trust: Trust, timeout: float = 10.0) -> None:
        self.trust = trust
        self.node = Client(url, timeout=timeout)
        self.last: Verified | None = None  # the last verified answer (its height and header)

    @classmethod
    def from_waypoint(cls, url: str, waypoint: str, timeout: float = 10.0) -> LightClient:
        """A client trusting the set of a waypoint's epoch, once the node proves it passes through."""
        height, block_id, epoch = parse_waypoint(waypoint)
        node = Client(url, timeout=timeout)
        try:
            trust = anchor(height, block_id, epoch, node.get("/epochs", **{"from": epoch, "limit": 1}))
        finally:
            node.close()
        return cls(url, trust, timeout)

    def close(self) -> None:
        self.node.close()

    def __enter__(self) -> LightClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def follow_epochs(self, epoch: int) -> None:
        """Move the trust up to ``epoch`` through the node's epoch-change proofs, each checked."""
        for _ in range(MAX_EPOCH_PAGES):
            if self.trust.epoch >= epoch:
                return
            before = self.trust.epoch
            advance(self.trust, self.node.get("/epochs", **{"from": before}))
            if self.trust.epoch == before:
                break
        if self.trust.epoch < epoch:
            raise fail(
                f"the header is of epoch {epoch}, but the node proves no hand-over past epoch "
                f"{self.trust.epoch} (a skipped epoch)"
            )

    def read(self, path: str, keys: Sequence[bytes]) -> Verified:
        env = self.node.get(path, proof="true")
        self.last = self.verified(env, keys)
        return self.last

    def verified(self, env: Any, keys: Sequence[bytes]) -> Verified:
        """``verify_envelope``, after following the epochs up to the envelope's header."""
        header, _ = envelope_header(env)
        if header.chain_id == self.trust.chain_id and header.epoch > self.trust.epoch:
            self.follow_epochs(header.epoch)
        return verify_envelope(self.trust, env, keys)

    def record(self, name: str) -> RecordEntry | None:
        key = record_key(name)
        entry = _entry(RecordEntry, self.read(f"/records/{quote(name)}", [key]).values[key])
        return entry

    def dataset(self, dataset_id: bytes) -> DatasetEntry | None:
        key = dataset_key(dataset_id)
        return _entry(DatasetEntry, self.read(f"/datasets/{dataset_id.hex()}", [key]).values[key])

    def grant(self, grant_id: bytes) -> GrantEntry | None:
        key = grant_key(grant_id)
        return _entry(GrantEntry, self.read(f"/grants/{grant_id.hex()}", [key]).values[key])

    def district(self, account: bytes) -> DistrictEntry | None:
        key = district_key(account)
        return _entry(DistrictEntry, self.read(f"/districts/{account.hex()}", [key]).values[key])

    def nonce(self, account: bytes) -> int:
        key = nonce_key(account)
        raw = self.read(f"/accounts/{account.hex()}", [key]).values[key]
        return 0 if raw is None else int.from_bytes(raw, "big")

    def validators(self) -> tuple[ValidatorSet, list[DistrictEntry]]:
        """The validator set and each validator's district (its PRE key), all proven at one height."""
        env = self.node.get("/validators", proof="true")
        # The set decides which district keys to ask proofs of: read it from the proven first entry.
        first = env.get("entries", [{}])[0] if isinstance(env, dict) and env.get("entries") else {}
        try:
            vset = decode(ValidatorSet, _hex(first.get("value"), "the validator set"))
        except DecodeError as exc:
            raise VerificationError(f"verification failed: malformed validator set: {exc}") from exc
        keys = [VALIDATOR_SET, *(district_key(v) for v in vset.validators)]
        verified = self.last = self.verified(env, keys)
        districts = []
        for account in vset.validators:
            entry = _entry(DistrictEntry, verified.values[district_key(account)])
            if entry is None:
                raise VerificationError(
                    f"verification failed: validator {account.hex()[:16]} has no district"
                )
            districts.append(entry)
        return vset, districts


__all__ = ["LightClient", "Trust", "VerificationError", "Verified", "verify_envelope"]
