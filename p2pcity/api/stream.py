"""The events a committed block makes, for each topic of the event stream, and their cursors.

Pure: a function of a committed block and the committed state (for the
grant a revoke or a request names). The stream is built from committed data
only, so it is resumable by construction: every event has a cursor
``HEIGHT:POSITION`` (position 0 is the block itself, ``i + 1`` its
transaction ``i``), cursors grow strictly along the chain, and resuming after
a cursor replays exactly what came after it on every node.

Topics and their filters:

- ``blocks``: one ``block`` event per committed block.
- ``txs`` (``account``: its sender): one ``tx`` event per committed transaction, with its receipt.
- ``records`` (``namespace`` or ``name``): a ``record`` event per record version written.
- ``dataset`` (``dataset``: its id): ``dataset`` (registered), ``grant``,
  ``revoke`` and ``access`` (a request, granted or refused) events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from p2pcity.api import views
from p2pcity.chain import queries
from p2pcity.chain.entries import AccessEntry
from p2pcity.chain.handlers import dataset_id_of, grant_id_of
from p2pcity.chain.state import StateView, access_key
from p2pcity.codec import decode
from p2pcity.types.block import Block
from p2pcity.types.tx import AccessGrant, AccessRequest, AccessRevoke, RecordPut, Transaction, TxError

TOPICS = ("blocks", "txs", "records", "dataset")
CURSOR = re.compile(r"^([0-9]{1,19}):([0-9]{1,9})$")


class CursorError(ValueError):
    pass


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    height: int
    position: int

    def __str__(self) -> str:
        return f"{self.height}:{self.position}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        match = CURSOR.match(text.strip())
        if match is None:
            raise CursorError(f"a cursor is HEIGHT:POSITION (as in an event's id), not {text[:40]!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def end_of(cls, height: int) -> Cursor:
        """After every event of the block at ``height``."""
        return cls(height, 2**32)


@dataclass(frozen=True, slots=True)
class Filter:
    topic: str
    account: bytes | None = None
    namespace: str | None = None
    name: str | None = None
    dataset: bytes | None = None


@dataclass(frozen=True, slots=True)
class Event:
    cursor: Cursor
    kind: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"cursor": str(self.cursor), "event": self.kind, **self.data}


def block_events(block: Block, state: StateView, want: Filter, after: Cursor) -> list[Event]:
    """The events of ``block`` for ``want`` with cursors after ``after``, in cursor order."""
    if block.height < after.height:
        return []
    out: list[Event] = []
    if want.topic == "blocks":
        cursor = Cursor(block.height, 0)
        if cursor > after:
            out.append(Event(cursor, "block", views.block_summary(block)))
        return out
    for index, tx in enumerate(block.txs):
        cursor = Cursor(block.height, index + 1)
        if cursor <= after:
            continue
        found = _tx_event(tx, block, index, state, want)
        if found is not None:
            kind, data = found
            out.append(
                Event(cursor, kind, {"height": block.height, "index": index, "tx": tx.hash.hex(), **data})
            )
    return out


def _tx_event(
    tx: Transaction, block: Block, index: int, state: StateView, want: Filter
) -> tuple[str, dict[str, Any]] | None:
    receipt = queries.receipt(state, tx.hash)
    ok = receipt.ok if receipt is not None else None
    if want.topic == "txs":
        if want.account is not None and tx.sender != want.account:
            return None
        return "tx", {**views.tx_summary(tx), "ok": ok, "error": (receipt.error or None) if receipt else None}
    try:
        payload = tx.payload
    except TxError:
        return None
    if ok is False and not isinstance(payload, AccessRequest):
        return None  # a refused transaction changed nothing but its sender's nonce
    if want.topic == "records" and isinstance(payload, RecordPut):
        namespace = payload.name.partition("/")[0]
        if want.namespace is not None and namespace != want.namespace:
            return None
        if want.name is not None and payload.name != want.name:
            return None
        return "record", {
            "name": payload.name,
            "version": payload.version,
            "sha256": payload.digest.hex(),
            "size": payload.size,
            "signer": tx.sender.hex(),
            "timestamp_ms": block.header.timestamp_ms,
        }
    if want.topic == "dataset":
        # A refused access request is still on the audit log, and so in the stream.
        return _dataset_event(tx, payload, block, index, state, want.dataset)
    return None


def _dataset_event(
    tx: Transaction, payload: Any, block: Block, index: int, state: StateView, dataset: bytes | None
) -> tuple[str, dict[str, Any]] | None:
    kind: str
    data: dict[str, Any]
    if tx.kind == "dataset.register":
        target = dataset_id_of(tx)
        kind, data = "dataset", {"owner": tx.sender.hex()}
    elif isinstance(payload, AccessGrant):
        target = payload.dataset_id
        kind, data = "grant", {"grant": grant_id_of(tx).hex(), "grantee": payload.grantee.hex()}
    elif isinstance(payload, (AccessRevoke, AccessRequest)):
        grant = queries.grant(state, payload.grant_id)
        if grant is None:
            return None
        target = grant.grant.dataset_id
        data = {"grant": payload.grant_id.hex(), "grantee": grant.grant.grantee.hex()}
        kind = "revoke"
        if isinstance(payload, AccessRequest):
            kind = "access"
            raw = state.state_get(access_key(target, block.height, index))
            entry = decode(AccessEntry, raw) if raw else None
            data["granted"] = entry.granted if entry else None
            data["reason"] = (entry.reason or None) if entry else None
            data["purpose"] = payload.purpose
    else:
        return None
    if dataset is not None and target != dataset:
        return None
    return kind, {"dataset": target.hex(), "timestamp_ms": block.header.timestamp_ms, **data}
