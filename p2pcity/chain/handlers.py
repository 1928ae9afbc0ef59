"""The effect of each transaction kind on the state.

A handler gets an overlay to write into and the transaction's context. It
raises :class:`Rejected` with a reason for a transaction that is well formed
but not allowed by the current state (its writes are discarded), or returns a
reason for a failure whose writes must stay (a refused access request is
still an audit record). Either way the transaction consumes its nonce and
leaves a failed receipt, so a client always gets an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from p2pcity.chain.access import (
    dataset_id_of,
    describe,
    fragments_of,
    grant_id_of,
    grant_refusal,
    min_threshold,
    possession_problem,
)
from p2pcity.chain.entries import (
    AccessEntry,
    DatasetEntry,
    DistrictEntry,
    EpochEntry,
    FragmentsEntry,
    GrantEntry,
    RecordEntry,
    ValidatorSet,
)
from p2pcity.chain.state import (
    VALIDATOR_SET,
    Overlay,
    access_key,
    blob_index,
    capsule_index,
    dataset_key,
    delegating_key_index,
    district_key,
    epoch_key,
    fragments_key,
    grant_key,
    namespace_key,
    record_key,
    record_version_key,
)
from p2pcity.codec import decode, encode
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import verify
from p2pcity.types.block import quorum_size
from p2pcity.types.tx import (
    AccessGrant,
    AccessRegrant,
    AccessRequest,
    AccessRevoke,
    DataCapsule,
    DatasetRegister,
    DistrictChange,
    RecordPut,
    SealedKeyFrag,
    Transaction,
)

MAX_KEY_FRAGMENTS = 256


class Rejected(Exception):  # noqa: N818 - "Rejected" reads as the verdict it is
    """A well-formed transaction that the current state does not allow."""


@dataclass(frozen=True, slots=True)
class TxContext:
    tx: Transaction
    height: int
    index: int
    timestamp_ms: int


def district_change_message(chain_id: str, change: DistrictChange) -> bytes:
    """What each approving validator signs: the change and the set version it applies to."""
    return tagged_hash(
        b"p2pcity/district-change/v1",
        chain_id.encode(),
        change.set_version.to_bytes(8, "big"),
        change.action.encode(),
        encode(change.district),
    )


def validator_set(state: Overlay) -> ValidatorSet:
    raw = state.state_get(VALIDATOR_SET)
    if raw is None:
        raise Rejected("state has no validator set (not initialised from a genesis)")
    return decode(ValidatorSet, raw)


def apply_district_change(state: Overlay, ctx: TxContext, change: DistrictChange) -> None:
    vset = validator_set(state)
    # Rule: approvals are bound to the current set version, so old approvals cannot be replayed.
    if change.set_version != vset.version:
        raise Rejected(f"approvals are for validator set {change.set_version}, current is {vset.version}")
    # Rule: a quorum (2f+1) of distinct current validators must approve.
    message = district_change_message(ctx.tx.chain_id, change)
    current = set(vset.validators)
    approvers = {
        a.signer for a in change.approvals if a.signer in current and verify(a.signer, message, a.signature)
    }
    need = quorum_size(len(vset.validators))
    if len(approvers) < need:
        raise Rejected(f"{len(approvers)} valid approvals, {need} needed")
    d = change.district
    existing = state.state_get(district_key(d.account))
    if change.action == "add":
        if existing is not None:
            raise Rejected("district account already registered")
        _check_unique_name(state, d.name)
    elif change.action in ("update", "remove"):
        if existing is None:
            raise Rejected("district account is not registered")
    else:
        raise Rejected(f"unknown district action {change.action!r}")
    if d.role not in ("validator", "observer"):
        raise Rejected("role must be 'validator' or 'observer'")
    validators = current - {d.account}
    if change.action != "remove" and d.role == "validator":
        validators.add(d.account)
    # Rule: the chain can never be left without validators.
    if not validators:
        raise Rejected("a change may not remove the last validator")
    if change.action == "remove":
        state.put(district_key(d.account), None)
    else:
        state.put(district_key(d.account), encode(DistrictEntry(d, ctx.height)))
    new_set = tuple(sorted(validators))
    state.put(VALIDATOR_SET, encode(ValidatorSet(vset.version + 1, new_set)))
    # The validator-set history: a node syncing later, or a light client, verifies each epoch's
    # blocks against that epoch's set (the epoch begins after this block: p2pcity.types.epoch).
    if state.state_get(epoch_key(vset.version)) is None:
        state.put(epoch_key(vset.version), encode(EpochEntry(vset.version, 0, vset.validators)))
    state.put(epoch_key(vset.version + 1), encode(EpochEntry(vset.version + 1, ctx.height, new_set)))


def _check_unique_name(state: Overlay, name: str) -> None:
    for _, raw in state.state_iter(b"d/"):
        if decode(DistrictEntry, raw).district.name == name:
            raise Rejected(f"district name {name!r} is taken")


def apply_record_put(state: Overlay, ctx: TxContext, put: RecordPut) -> None:
    namespace, sep, path = put.name.partition("/")
    # Rule: names are "namespace/path" so that districts cannot collide.
    if not sep or not namespace or not path:
        raise Rejected("a record name is 'namespace/path'")
    owner = state.state_get(namespace_key(namespace))
    # Rule: a namespace belongs to the first account that writes in it.
    if owner is not None and owner != ctx.tx.sender:
        raise Rejected(f"namespace {namespace!r} belongs to another account")
    current = state.state_get(record_key(put.name))
    current_version = decode(RecordEntry, current).version if current else 0
    # Rule: versions go up by exactly one: a record is never silently overwritten.
    if put.version != current_version + 1:
        raise Rejected(f"record {put.name!r} is at version {current_version}; expected {current_version + 1}")
    entry = RecordEntry(
        put.name,
        put.version,
        put.digest,
        put.size,
        put.media_type,
        put.metadata,
        ctx.tx.sender,
        ctx.height,
        ctx.tx.hash,
        ctx.timestamp_ms,
    )
    raw = encode(entry)
    if owner is None:
        state.put(namespace_key(namespace), ctx.tx.sender)
    state.put(record_key(put.name), raw)
    state.put(record_version_key(put.name, put.version), raw)


def apply_dataset_register(state: Overlay, ctx: TxContext, reg: DatasetRegister) -> None:
    # Rule: the sender proves she holds the delegating key and the fragment-signing key.
    problem = possession_problem(ctx.tx.chain_id, ctx.tx.sender, reg)
    if problem is not None:
        raise Rejected(problem)
    capsule = decode(DataCapsule, reg.capsule, max_size=512)
    # Rule: a capsule and a delegating key belong to one dataset only.
    if state.state_get(delegating_key_index(capsule.delegating_key)) is not None:
        raise Rejected("this delegating key is already registered for another dataset")
    if state.state_get(capsule_index(capsule.capsule)) is not None:
        raise Rejected("this capsule is already registered for another dataset")
    dataset_id = dataset_id_of(ctx.tx)
    tx = ctx.tx
    entry = DatasetEntry(dataset_id, tx.sender, reg, ctx.height, ctx.timestamp_ms, tx.nonce, tx.signature)
    state.put(dataset_key(dataset_id), encode(entry))
    state.put(delegating_key_index(capsule.delegating_key), dataset_id)
    state.put(capsule_index(capsule.capsule), dataset_id)
    state.put(blob_index(reg.ciphertext_hash, dataset_id), b"")


def apply_access_grant(state: Overlay, ctx: TxContext, grant: AccessGrant) -> None:
    raw = state.state_get(dataset_key(grant.dataset_id))
    # Rule: only the owner of an existing dataset can grant access to it.
    if raw is None:
        raise Rejected("no such dataset")
    dataset = decode(DatasetEntry, raw)
    if dataset.owner != ctx.tx.sender:
        raise Rejected("only the dataset owner can grant access")
    # Rule: the fragments are signed by the key the owner proved at registration.
    if grant.verifying_key != dataset.dataset.verifying_key:
        raise Rejected("the grant's verifying key is not the dataset's")
    _check_fragments(state, grant.kfrags, grant.threshold)
    if grant.expires_at_ms and grant.expires_at_ms <= ctx.timestamp_ms:
        raise Rejected("grant expires in the past")
    grant_id = grant_id_of(ctx.tx)
    entry = GrantEntry(grant_id, ctx.tx.sender, grant, ctx.height, 0, 0, ctx.tx.nonce, ctx.tx.signature)
    state.put(grant_key(grant_id), encode(entry))


def _check_fragments(state: Overlay, kfrags: tuple[SealedKeyFrag, ...], threshold: int) -> None:
    """The rules a grant's fragments obey, at ``access.grant`` and at each ``access.regrant``."""
    vset = validator_set(state)
    holders = [k.validator for k in kfrags]
    # Rule: one key fragment per current validator, so every proxy can serve its share.
    if len(set(holders)) != len(holders) or set(holders) != set(vset.validators):
        raise Rejected("a grant carries exactly one key fragment per current validator")
    # Rule: each fragment is sealed to its validator's registered PRE key, and those keys are
    # distinct: fragments all sealed to one node's key would let it serve alone.
    registered = _pre_keys(state, holders)
    if any(registered[k.validator] != k.pre_key for k in kfrags):
        raise Rejected("a key fragment is not sealed to its validator's registered PRE key")
    if len(set(registered.values())) != len(holders):
        raise Rejected("two validators share a PRE key: fragments would not be held apart")
    # Rule: the threshold is reachable and more than f, so f faulty proxies never serve alone.
    low = min_threshold(len(holders))
    if not low <= threshold <= len(holders):
        raise Rejected(f"threshold {threshold} outside {low}..{len(holders)} (f+1..n)")


def _owners_grant(state: Overlay, ctx: TxContext, grant_id: bytes, action: str) -> GrantEntry:
    """The grant ``ctx``'s sender owns. Rule: only the owner who granted revokes or regrants
    (she alone holds the delegating key the fragments come from)."""
    raw = state.state_get(grant_key(grant_id))
    if raw is None:
        raise Rejected("no such grant")
    entry = decode(GrantEntry, raw)
    if entry.owner != ctx.tx.sender:
        raise Rejected(f"only the grant's owner can {action} it")
    return entry


def apply_access_regrant(state: Overlay, ctx: TxContext, regrant: AccessRegrant) -> None:
    entry = _owners_grant(state, ctx, regrant.grant_id, "regrant")
    # Rule: a revoked or expired grant stays dead; a regrant does not revive it.
    if entry.revoked_height:
        raise Rejected(f"grant revoked at height {entry.revoked_height}: not regranted")
    if entry.grant.expires_at_ms and entry.grant.expires_at_ms <= ctx.timestamp_ms:
        raise Rejected("grant expired: not regranted")
    vset = validator_set(state)
    # Rule: a regrant names the set it was made for, so one signed for an earlier set (held
    # back, or replayed after a change) is refused rather than sealed to the wrong proxies.
    if regrant.set_version != vset.version:
        raise Rejected(f"the regrant is for validator set {regrant.set_version}, current is {vset.version}")
    current = fragments_of(entry, _fragments_entry(state, regrant.grant_id))
    # Rule: a regrant changes something: its fragments are not already the current set's.
    if current.set_version == vset.version or {(k.validator, k.pre_key) for k in current.kfrags} == set(
        _pre_keys(state, list(vset.validators)).items()
    ):
        raise Rejected(f"the grant's fragments are already those of validator set {vset.version}")
    _check_fragments(state, regrant.kfrags, regrant.threshold)
    tx = ctx.tx
    refreshed = FragmentsEntry(regrant.grant_id, tx.sender, regrant, ctx.height, tx.nonce, tx.signature)
    state.put(fragments_key(regrant.grant_id), encode(refreshed))


def _fragments_entry(state: Overlay, grant_id: bytes) -> FragmentsEntry | None:
    raw = state.state_get(fragments_key(grant_id))
    return decode(FragmentsEntry, raw) if raw is not None else None


def _pre_keys(state: Overlay, accounts: list[bytes]) -> dict[bytes, bytes]:
    found = {}
    for account in accounts:
        raw = state.state_get(district_key(account))
        if raw is None:
            raise Rejected("a validator of the set has no district entry")
        found[account] = decode(DistrictEntry, raw).district.pre_key
    return found


def apply_access_revoke(state: Overlay, ctx: TxContext, revoke: AccessRevoke) -> None:
    entry = _owners_grant(state, ctx, revoke.grant_id, "revoke")
    if entry.revoked_height:
        raise Rejected(f"grant already revoked at height {entry.revoked_height}")
    revoked = replace(entry, revoked_height=ctx.height)
    state.put(grant_key(revoke.grant_id), encode(revoked))


def apply_access_request(state: Overlay, ctx: TxContext, req: AccessRequest) -> str | None:
    raw = state.state_get(grant_key(req.grant_id))
    if raw is None:
        raise Rejected("no such grant")
    entry = decode(GrantEntry, raw)
    refusal = grant_refusal(entry, ctx.tx.sender, req.purpose, ctx.timestamp_ms)
    # Every request is on record, refused ones too: the audit log shows attempts.
    access = AccessEntry(
        entry.grant.dataset_id,
        req.grant_id,
        ctx.tx.sender,
        req.purpose,
        ctx.height,
        ctx.index,
        ctx.timestamp_ms,
        ctx.tx.hash,
        refusal is None,
        refusal.value if refusal is not None else "",
    )
    state.put(access_key(entry.grant.dataset_id, ctx.height, ctx.index), encode(access))
    if refusal is not None:
        return describe(refusal, entry)
    used = replace(entry, uses=entry.uses + 1)
    state.put(grant_key(req.grant_id), encode(used))
    return None


__all__ = ["HANDLERS", "Rejected", "TxContext", "dataset_id_of", "grant_id_of"]

HANDLERS: dict[type[Any], Any] = {
    DistrictChange: apply_district_change,
    RecordPut: apply_record_put,
    DatasetRegister: apply_dataset_register,
    AccessGrant: apply_access_grant,
    AccessRevoke: apply_access_revoke,
    AccessRegrant: apply_access_regrant,
    AccessRequest: apply_access_request,
}
