"""Read-only questions asked of a state view: by the API, the proxy service and clients."""

from __future__ import annotations

from p2pcity.chain.entries import (
    AccessEntry,
    DatasetEntry,
    DistrictEntry,
    GrantEntry,
    Receipt,
    RecordEntry,
    ValidatorSet,
)
from p2pcity.chain.state import (
    VALIDATOR_SET,
    StateView,
    access_prefix,
    dataset_key,
    grant_key,
    receipt_key,
    record_key,
    record_version_key,
)
from p2pcity.codec import decode


def validator_set(state: StateView) -> ValidatorSet:
    raw = state.state_get(VALIDATOR_SET)
    return decode(ValidatorSet, raw) if raw else ValidatorSet(0, ())


def districts(state: StateView) -> list[DistrictEntry]:
    return [decode(DistrictEntry, raw) for _, raw in state.state_iter(b"d/")]


def record(state: StateView, name: str, version: int | None = None) -> RecordEntry | None:
    key = record_key(name) if version is None else record_version_key(name, version)
    raw = state.state_get(key)
    return decode(RecordEntry, raw) if raw else None


def dataset(state: StateView, dataset_id: bytes) -> DatasetEntry | None:
    raw = state.state_get(dataset_key(dataset_id))
    return decode(DatasetEntry, raw) if raw else None


def grant(state: StateView, grant_id: bytes) -> GrantEntry | None:
    raw = state.state_get(grant_key(grant_id))
    return decode(GrantEntry, raw) if raw else None


def grants_for(state: StateView, dataset_id: bytes) -> list[GrantEntry]:
    found = (decode(GrantEntry, raw) for _, raw in state.state_iter(b"g/"))
    return [g for g in found if g.grant.dataset_id == dataset_id]


def audit_log(state: StateView, dataset_id: bytes) -> list[AccessEntry]:
    return [decode(AccessEntry, raw) for _, raw in state.state_iter(access_prefix(dataset_id))]


def receipt(state: StateView, tx_hash: bytes) -> Receipt | None:
    raw = state.state_get(receipt_key(tx_hash))
    return decode(Receipt, raw) if raw else None
