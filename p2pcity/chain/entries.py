"""What the ledger stores under its keys: entries written by transactions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from p2pcity.codec import U32, U64, Hash, MaxLen, Name, PublicKey, Signature, Text
from p2pcity.types.tx import AccessGrant, AccessRegrant, DatasetRegister, District


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    version: U64  # bumped by every district change; approvals name the version they approve
    validators: Annotated[tuple[PublicKey, ...], MaxLen(1024)]  # sorted accounts


@dataclass(frozen=True, slots=True)
class EpochEntry:
    """The validator-set history: epoch ``epoch`` (a set version) began after the block at
    ``start_height`` (the block holding the change; 0 and genesis for epoch 0) with ``validators``."""

    epoch: U64
    start_height: U64
    validators: Annotated[tuple[PublicKey, ...], MaxLen(1024)]


@dataclass(frozen=True, slots=True)
class DistrictEntry:
    district: District
    since_height: U64


@dataclass(frozen=True, slots=True)
class RecordEntry:
    name: Name
    version: U64
    digest: Hash
    size: U64
    media_type: Name
    metadata: Text
    signer: PublicKey
    height: U64
    tx_hash: Hash
    timestamp_ms: U64


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """A registered dataset. ``nonce`` and ``signature`` are those of the owner's
    ``dataset.register``: with them anyone re-checks the entry against its id alone
    (``p2pcity.chain.access.dataset_entry_problem``), whatever node served it."""

    dataset_id: Hash
    owner: PublicKey
    dataset: DatasetRegister
    height: U64
    timestamp_ms: U64
    nonce: U64
    signature: Signature


@dataclass(frozen=True, slots=True)
class GrantEntry:
    """An access grant; ``nonce`` and ``signature`` are the owner's ``access.grant``'s, so the
    grant's terms are checkable against its id (its revocation and uses are not: issue 13)."""

    grant_id: Hash
    owner: PublicKey
    grant: AccessGrant
    height: U64
    revoked_height: U64  # 0: live
    uses: U64
    nonce: U64
    signature: Signature


@dataclass(frozen=True, slots=True)
class FragmentsEntry:
    """A grant's key fragments refreshed by the owner's latest ``access.regrant``: they replace
    the grant's own (``p2pcity.chain.access.fragments_of``). ``nonce`` and ``signature`` are the
    regrant's, so it is checkable against the owner's signature like the grant itself."""

    grant_id: Hash
    owner: PublicKey
    regrant: AccessRegrant
    height: U64
    nonce: U64
    signature: Signature


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One committed access request: the audit record of who opened what, when, under which grant."""

    dataset_id: Hash
    grant_id: Hash
    grantee: PublicKey
    purpose: Text
    height: U64
    index: U32
    timestamp_ms: U64
    tx_hash: Hash
    granted: bool
    reason: Text  # a p2pcity.chain.access.Refusal code; "" when granted


@dataclass(frozen=True, slots=True)
class Receipt:
    height: U64
    index: U32
    ok: bool
    error: Text
