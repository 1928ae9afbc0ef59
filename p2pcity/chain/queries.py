"""Read-only questions asked of a state view: by the API, the proxy service and clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from p2pcity.chain.entries import (
    AccessEntry,
    DatasetEntry,
    DistrictEntry,
    EpochEntry,
    FragmentsEntry,
    GrantEntry,
    Receipt,
    RecordEntry,
    ValidatorSet,
)
from p2pcity.chain.state import (
    VALIDATOR_SET,
    StateView,
    access_prefix,
    blob_prefix,
    dataset_key,
    epoch_key,
    fragments_key,
    grant_key,
    receipt_key,
    record_key,
    record_version_key,
)
from p2pcity.codec import decode

T = TypeVar("T")

# A filtered list (datasets of one owner, grants to one grantee) scans at most this many
# entries per page, so a request costs bounded work whatever the chain holds; the page then
# ends early with a cursor to go on from.
MAX_SCAN = 5000


def validator_set(state: StateView) -> ValidatorSet:
    raw = state.state_get(VALIDATOR_SET)
    return decode(ValidatorSet, raw) if raw else ValidatorSet(0, ())


def epoch(state: StateView, number: int) -> EpochEntry | None:
    """When epoch ``number`` began and with which set (epoch 0: genesis, whatever the state says)."""
    raw = state.state_get(epoch_key(number))
    if raw is not None:
        return decode(EpochEntry, raw)
    if number == 0:
        current = validator_set(state)
        return EpochEntry(0, 0, current.validators) if current.version == 0 else None
    return None


def epochs(state: StateView) -> list[EpochEntry]:
    """The validator-set history, oldest first."""
    found = [decode(EpochEntry, raw) for _, raw in state.state_iter(b"ep/")]
    if not found:
        first = epoch(state, 0)
        return [first] if first is not None else []
    return found


def districts(state: StateView) -> list[DistrictEntry]:
    return [decode(DistrictEntry, raw) for _, raw in state.state_iter(b"d/")]


def record(state: StateView, name: str, version: int | None = None) -> RecordEntry | None:
    key = record_key(name) if version is None else record_version_key(name, version)
    raw = state.state_get(key)
    return decode(RecordEntry, raw) if raw else None


def dataset(state: StateView, dataset_id: bytes) -> DatasetEntry | None:
    raw = state.state_get(dataset_key(dataset_id))
    return decode(DatasetEntry, raw) if raw else None


def datasets_of_blob(state: StateView, ciphertext_hash: bytes, limit: int = 16) -> list[DatasetEntry]:
    """Up to ``limit`` datasets naming ``ciphertext_hash``, through the ``db/`` index (bounded work:
    anyone can register a dataset claiming someone else's hash, so there may be many)."""
    prefix = blob_prefix(ciphertext_hash)
    found: list[DatasetEntry] = []
    for key, _ in state.state_iter(prefix):
        entry = dataset(state, key[len(prefix) :])
        if entry is not None:
            found.append(entry)
        if len(found) >= limit:
            break
    return found


def grant(state: StateView, grant_id: bytes) -> GrantEntry | None:
    raw = state.state_get(grant_key(grant_id))
    return decode(GrantEntry, raw) if raw else None


def fragments(state: StateView, grant_id: bytes) -> FragmentsEntry | None:
    """The grant's key fragments as refreshed by its owner's latest regrant, if any."""
    raw = state.state_get(fragments_key(grant_id))
    return decode(FragmentsEntry, raw) if raw else None


def audit_log(state: StateView, dataset_id: bytes) -> list[AccessEntry]:
    return [decode(AccessEntry, raw) for _, raw in state.state_iter(access_prefix(dataset_id))]


def receipt(state: StateView, tx_hash: bytes) -> Receipt | None:
    raw = state.state_get(receipt_key(tx_hash))
    return decode(Receipt, raw) if raw else None


# --- pages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Entries in key order and the last key looked at (None: nothing after it)."""

    items: list[T]
    next: bytes | None


def page(
    state: StateView,
    prefix: bytes,
    after: bytes | None,
    limit: int,
    load: Callable[[bytes], T],
    keep: Callable[[T], bool] | None = None,
) -> Page[T]:
    """Up to ``limit`` entries under ``prefix`` with keys after ``after`` (that ``keep`` accepts)."""
    # The smallest key above ``after`` is ``after`` with a zero byte appended.
    start = prefix if after is None or after < prefix else after + b"\x00"
    items: list[T] = []
    scanned = 0
    last: bytes | None = None
    entries = state.state_iter(prefix, start)
    try:
        for key, raw in entries:
            last, scanned = key, scanned + 1
            entry = load(raw)
            if keep is None or keep(entry):
                items.append(entry)
            if len(items) >= limit or scanned >= MAX_SCAN:
                return Page(items, last)
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()  # a store iterator holds a database snapshot until closed
    return Page(items, None)


def _record(raw: bytes) -> RecordEntry:
    return decode(RecordEntry, raw)


def _dataset(raw: bytes) -> DatasetEntry:
    return decode(DatasetEntry, raw)


def _grant(raw: bytes) -> GrantEntry:
    return decode(GrantEntry, raw)


def _access(raw: bytes) -> AccessEntry:
    return decode(AccessEntry, raw)


def records(state: StateView, namespace: str | None, after: bytes | None, limit: int) -> Page[RecordEntry]:
    """The latest version of each record, by name; in ``namespace`` when given."""
    prefix = record_key(f"{namespace}/" if namespace else "")
    return page(state, prefix, after, limit, _record)


def record_history(state: StateView, name: str, after: bytes | None, limit: int) -> Page[RecordEntry]:
    """Every version of one record, oldest first."""
    return page(state, record_version_key(name, 0)[:-8], after, limit, _record)


def datasets(state: StateView, owner: bytes | None, after: bytes | None, limit: int) -> Page[DatasetEntry]:
    keep = None if owner is None else (lambda d: d.owner == owner)
    return page(state, dataset_key(b""), after, limit, _dataset, keep)


def grants(
    state: StateView,
    grantee: bytes | None,
    dataset_id: bytes | None,
    after: bytes | None,
    limit: int,
) -> Page[GrantEntry]:
    def keep(g: GrantEntry) -> bool:
        return (grantee is None or g.grant.grantee == grantee) and (
            dataset_id is None or g.grant.dataset_id == dataset_id
        )

    return page(state, grant_key(b""), after, limit, _grant, keep)


def accesses(
    state: StateView, dataset_id: bytes | None, after: bytes | None, limit: int
) -> Page[AccessEntry]:
    """The audit log: each access request and its outcome, of one dataset or all (commit order)."""
    prefix = access_prefix(dataset_id) if dataset_id is not None else access_prefix(b"")
    return page(state, prefix, after, limit, _access)
