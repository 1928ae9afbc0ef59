"""Who may put a blob on a node, how much, and for how long before a dataset names it.

An upload needs an **upload ticket**: an account's Ed25519 signature over the
chain, the blob's hash, its size and an expiry (header ``Upload-Ticket:
ACCOUNT.SIZE.EXPIRES_MS.SIGNATURE``, hex and decimals). A ticket is bound to
one blob: it cannot be replayed for another hash or a bigger size.

Until a committed ``dataset.register`` names a blob it is *pending* and counts
against two quotas: the uploading account's and the node's. Pending blobs and
partial uploads older than the TTL are collected (:meth:`UploadGate.collect`,
run every quarter TTL by the node); a blob a committed dataset names is kept
and leaves the quotas.

The bookkeeping is one small JSON file per pending blob under
``blobs/uploads/``; its count is bounded by the node quota over the smallest
blob, and a scan of it is what the quota check costs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from p2pcity.chain import queries
from p2pcity.chain.state import StateView
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.store.blobs import BlobStore

TICKET_HEADER = "Upload-Ticket"
_TAG = b"p2pcity/upload-ticket/v1"


class TicketError(ValueError):
    """A missing, malformed, foreign, expired or unbound upload ticket (the client's 4xx)."""


@dataclass(frozen=True, slots=True)
class UploadTicket:
    account: bytes
    size: int
    expires_ms: int
    signature: bytes


def ticket_message(chain_id: str, account: bytes, blob_hash: bytes, size: int, expires_ms: int) -> bytes:
    return tagged_hash(
        _TAG, chain_id.encode(), account, blob_hash, size.to_bytes(8, "big"), expires_ms.to_bytes(8, "big")
    )


def sign_ticket(signer: SigningKey, chain_id: str, blob_hash: bytes, size: int, expires_ms: int) -> str:
    """The ``Upload-Ticket`` header value for uploading ``blob_hash`` of ``size`` bytes."""
    signature = signer.sign(ticket_message(chain_id, signer.public_key, blob_hash, size, expires_ms))
    return f"{signer.public_key.hex()}.{size}.{expires_ms}.{signature.hex()}"


def parse_ticket(text: str) -> UploadTicket:
    parts = text.strip().split(".")
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit() or len(parts[1]) > 19:
        raise TicketError(f"{TICKET_HEADER} is ACCOUNT.SIZE.EXPIRES_MS.SIGNATURE")
    try:
        account, signature = bytes.fromhex(parts[0]), bytes.fromhex(parts[3])
    except ValueError:
        raise TicketError(f"{TICKET_HEADER}: account and signature are hex") from None
    if len(parts[2]) > 19:
        raise TicketError(f"{TICKET_HEADER}: expiry out of range")
    return UploadTicket(account, int(parts[1]), int(parts[2]), signature)


def check_ticket(ticket: UploadTicket, chain_id: str, blob_hash: bytes, size: int, now_ms: int) -> None:
    """Raise :class:`TicketError` unless ``ticket`` allows uploading ``blob_hash`` of ``size`` now."""
    # Rule: the ticket covers exactly this blob and this size (no replay for another).
    if ticket.size != size:
        raise TicketError(f"the ticket is for {ticket.size} bytes, the upload declares {size}")
    # Rule: a ticket expires (a leaked one is not good forever).
    if ticket.expires_ms < now_ms:
        raise TicketError("the upload ticket has expired")
    # Rule: the account signed it, for this chain.
    message = ticket_message(chain_id, ticket.account, blob_hash, size, ticket.expires_ms)
    if not verify(ticket.account, message, ticket.signature):
        raise TicketError("the upload ticket's signature does not verify for this blob")


@dataclass(frozen=True)
class Quotas:
    per_account: int = 8 << 30  # pending bytes one account may hold on a node
    per_node: int = 64 << 30  # pending bytes of all accounts together
    ttl_ms: int = 24 * 3600 * 1000  # how long a pending blob or a partial upload is kept


class UploadGate:
    """Admits ticketed uploads within quotas and collects what no committed dataset names."""

    def __init__(
        self,
        blobs: BlobStore,
        chain_id: str,
        quotas: Quotas,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.blobs = blobs
        self.chain_id = chain_id
        self.quotas = quotas
        self.clock = clock
        self.dir = blobs.root / "uploads"
        self.dir.mkdir(exist_ok=True)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _pending(self, state: StateView) -> list[tuple[Path, dict[str, object]]]:
        found = []
        for path in self.dir.glob("*.json"):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # a half-written entry from a crash: the TTL scan redoes it
                continue
            if queries.datasets_of_blob(state, bytes.fromhex(path.stem), 1):
                path.unlink(missing_ok=True)  # committed: kept for good, out of the quotas
                continue
            found.append((path, entry))
        return found

    def admit(self, header: str | None, blob_hash: bytes, size: int, state: StateView) -> None:
        """Check the ticket and the quotas, and book ``size`` bytes; raise TicketError or QuotaError."""
        if not header:
            raise TicketError(f"uploading needs an {TICKET_HEADER} signed by your account")
        ticket = parse_ticket(header)
        check_ticket(ticket, self.chain_id, blob_hash, size, self.now_ms())
        entry_path = self.dir / f"{blob_hash.hex()}.json"
        pending = [(p, e) for p, e in self._pending(state) if p != entry_path]
        mine = sum(int(str(e["size"])) for _, e in pending if e["account"] == ticket.account.hex())
        total = sum(int(str(e["size"])) for _, e in pending)
        if mine + size > self.quotas.per_account:
            raise QuotaError(
                f"this account has {mine} bytes pending on this node; its quota is {self.quotas.per_account}"
            )
        if total + size > self.quotas.per_node:
            raise QuotaError(
                f"this node has {total} bytes of uploads pending; its quota is {self.quotas.per_node}"
            )
        if not entry_path.exists():
            tmp = entry_path.with_suffix(".tmp")
            tmp.write_text(
                json.dumps({"account": ticket.account.hex(), "size": size, "at_ms": self.now_ms()})
            )
            os.replace(tmp, entry_path)

    def collect(self, state: StateView) -> int:
        """Delete pending blobs and partial uploads older than the TTL; returns how many went."""
        now, ttl = self.now_ms(), self.quotas.ttl_ms
        removed = 0
        for path, entry in self._pending(state):
            if now - int(str(entry["at_ms"])) > ttl:
                blob_hash = bytes.fromhex(path.stem)
                self.blobs.delete(blob_hash)
                (self.blobs.partial_dir / path.stem).unlink(missing_ok=True)
                path.unlink(missing_ok=True)
                removed += 1
        # A partial upload without a booking (older versions, fetches cut short) ages by its mtime.
        for partial in self.blobs.partial_dir.iterdir():
            try:
                age_ms = now - int(partial.stat().st_mtime * 1000)
            except FileNotFoundError:
                continue
            if age_ms > ttl and partial.name not in self.blobs.writing():
                partial.unlink(missing_ok=True)
                removed += 1
        return removed

    async def run_collector(self, committed_state: Callable[[], StateView]) -> None:
        """Collect every quarter TTL (at least each second), for as long as the node runs."""
        while True:
            await trio.sleep(max(1.0, self.quotas.ttl_ms / 4000))
            self.collect(committed_state())


class QuotaError(ValueError):
    """An upload that would take an account or the node over its quota (413)."""
