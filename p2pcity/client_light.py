"""The light client: reads state from one node and believes only what proofs show.

    trust = Trust.from_genesis(Genesis.load("genesis.json"))
    with LightClient("http://127.0.0.1:8700", trust) as node:
        entry = node.record("land/parcel-7")      # RecordEntry, or None when proven absent

A read asks for ``?proof=true`` (:mod:`p2pcity.api.proofs`) and checks, in order
(:func:`verify_envelope`, pure): the header is of the trusted chain and epoch; the QC
certifies that very header and is signed by a quorum of the trusted validator set
(``QuorumCert.verify``, the consensus rule itself); the header's state root binds the
two roots offered; each key's proof hashes to the tree root, showing the value or its
absence; the height is not below one this client verified before. Any failure is a
:class:`VerificationError` with one line saying what the node got wrong.

Trust comes from the genesis file (chain id, genesis block id, validator set). The
validator set is static here: a header or QC of a later epoch is refused, since an
epoch-change proof is needed to learn that epoch's set (issue 13, reconfiguration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from p2pcity.chain import proof
from p2pcity.chain.entries import DatasetEntry, DistrictEntry, GrantEntry, RecordEntry, ValidatorSet
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.state import (
    VALIDATOR_SET,
    dataset_key,
    district_key,
    grant_key,
    nonce_key,
    record_key,
)
from p2pcity.client import Client, ClientError
from p2pcity.codec import DecodeError, decode
from p2pcity.types.block import BlockHeader, QuorumCert

T = TypeVar("T")


class VerificationError(ClientError):
    """What a node sent does not prove what it claims: the node is lying or broken."""


@dataclass(slots=True)
class Trust:
    """What the client trusts without asking any node, and the highest height it verified."""

    chain_id: str
    genesis_id: bytes
    validators: tuple[bytes, ...]
    epoch: int = 0
    verified_height: int = 0

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> Trust:
        return cls(genesis.chain_id, genesis.block().id, genesis.validators)


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


def verify_envelope(trust: Trust, env: Any, keys: Sequence[bytes]) -> Verified:
    """Check a proof envelope for ``keys`` against ``trust``; return the proven values."""
    if not isinstance(env, dict) or not isinstance(env.get("entries"), list):
        raise VerificationError("verification failed: the node sent no proof")
    try:
        header = decode(BlockHeader, _hex(env.get("header"), "the header"))
        qc = decode(QuorumCert, _hex(env.get("qc"), "the QC"))
    except DecodeError as exc:
        raise VerificationError(f"verification failed: malformed header or QC: {exc}") from exc
    # Rule: a header of the trusted chain, in the epoch whose validator set we hold.
    if header.chain_id != trust.chain_id:
        raise VerificationError(
            f"verification failed: the header is of chain {header.chain_id!r}, not {trust.chain_id!r}"
        )
    if header.epoch != trust.epoch or qc.epoch != trust.epoch:
        raise VerificationError(
            f"verification failed: the header is of epoch {max(header.epoch, qc.epoch)}; this client "
            f"trusts the validator set of epoch {trust.epoch} only (no epoch-change proofs yet)"
        )
    # Rule: the QC certifies this very header...
    if qc.block_id != header.id or qc.height != header.height:
        raise VerificationError("verification failed: the QC certifies another block than the header")
    # ...and carries a quorum of the trusted validators' signatures (the consensus rule).
    if not qc.verify(trust.chain_id, trust.validators, trust.genesis_id):
        raise VerificationError(
            "verification failed: the QC is not signed by a quorum of the trusted validators "
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

    def close(self) -> None:
        self.node.close()

    def __enter__(self) -> LightClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def read(self, path: str, keys: Sequence[bytes]) -> Verified:
        self.last = verify_envelope(self.trust, self.node.get(path, proof="true"), keys)
        return self.last

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
        verified = self.last = verify_envelope(self.trust, env, keys)
        districts = []
        for account in vset.validators:
            entry = _entry(DistrictEntry, verified.values[district_key(account)])
            if entry is None:
                raise VerificationError(
                    f"verification failed: validator {account.hex()[:16]} has no district"
                )
            districts.append(entry)
        return vset, districts
