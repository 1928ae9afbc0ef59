"""Executing a block: the one deterministic transition of the ledger.

The proposer runs :func:`select` to keep only transactions that can be
included on top of its speculative state, then :func:`execute` to get the
state root it puts in the header; every validator runs :func:`execute` again
before it votes and compares. Commit writes the same result to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from p2pcity.chain.entries import Receipt
from p2pcity.chain.handlers import HANDLERS, Rejected, TxContext
from p2pcity.chain.state import (
    Overlay,
    StateRootError,
    StateView,
    next_state_root,
    nonce_key,
    receipt_key,
)
from p2pcity.chain.tree import TreeError
from p2pcity.codec import encode
from p2pcity.types.block import Block
from p2pcity.types.block_time import block_time_error
from p2pcity.types.tx import Transaction, TxError


class BlockError(ValueError):
    """A block that must not be voted for or committed."""


@dataclass(slots=True)
class Execution:
    """The outcome of a block: writes to apply, the new state root, one receipt per tx."""

    writes: dict[bytes, bytes | None]
    state_root: bytes
    receipts: list[Receipt] = field(default_factory=list)


def account_nonce(state: StateView, account: bytes) -> int:
    raw = state.state_get(nonce_key(account))
    return int.from_bytes(raw, "big") if raw else 0


def _includable(
    state: Overlay, tx: Transaction, chain_id: str, verified: Callable[[Transaction], bool]
) -> str | None:
    """Why ``tx`` may not be in a block on top of ``state``, or None if it may."""
    # Rule: the tx must name this chain, decode as its kind and be signed by its sender.
    if not verified(tx):
        try:
            tx.check(chain_id)
        except TxError as exc:
            return str(exc)
    # Rule: nonces are consumed strictly in order, one per transaction (no replay, no gaps).
    expected = account_nonce(state, tx.sender) + 1
    if tx.nonce != expected:
        return f"nonce {tx.nonce}, expected {expected}"
    return None


def _run(state: Overlay, ctx: TxContext) -> Receipt:
    tx = ctx.tx
    state.put(nonce_key(tx.sender), tx.nonce.to_bytes(8, "big"))
    scratch = Overlay(state)
    try:
        reason = HANDLERS[type(tx.payload)](scratch, ctx, tx.payload)
    except Rejected as exc:
        return Receipt(ctx.height, ctx.index, False, str(exc))
    state.writes.update(scratch.writes)
    return Receipt(ctx.height, ctx.index, reason is None, reason or "")


def _always_check(_: Transaction) -> bool:
    return False


def execute(
    base: StateView,
    parent_root: bytes,
    chain_id: str,
    height: int,
    timestamp_ms: int,
    txs: Iterable[Transaction],
    verified: Callable[[Transaction], bool] = _always_check,
) -> Execution:
    """Apply ``txs`` in order; raise :class:`BlockError` if any of them may not be included.

    ``verified(tx)`` says the caller already checked that transaction's
    signature (the mempool verifies each signature once), so it is not
    verified again here.
    """
    state = Overlay(base)
    receipts: list[Receipt] = []
    seen: set[bytes] = set()
    for index, tx in enumerate(txs):
        if tx.hash in seen:
            raise BlockError(f"transaction {tx.hash.hex()} appears twice")
        seen.add(tx.hash)
        reason = _includable(state, tx, chain_id, verified)
        if reason is not None:
            raise BlockError(f"transaction {index} ({tx.hash.hex()[:16]}) may not be included: {reason}")
        receipt = _run(state, TxContext(tx, height, index, timestamp_ms))
        state.put(receipt_key(tx.hash), encode(receipt))
        receipts.append(receipt)
    try:
        root, tree_writes = next_state_root(base, parent_root, height, state.writes)
    except (StateRootError, TreeError) as exc:
        raise BlockError(str(exc)) from exc
    return Execution({**state.writes, **tree_writes}, root, receipts)


def select(
    base: StateView,
    chain_id: str,
    candidates: Iterable[Transaction],
    limit: int,
    verified: Callable[[Transaction], bool] = _always_check,
) -> tuple[list[Transaction], list[tuple[Transaction, str]]]:
    """Pick up to ``limit`` includable transactions in order; return them and the dropped ones.

    Candidates should come nonce-ordered per sender (the mempool does that);
    a transaction whose nonce is not next yet is dropped from this block only.
    """
    state = Overlay(base)
    chosen: list[Transaction] = []
    dropped: list[tuple[Transaction, str]] = []
    seen: set[bytes] = set()
    for tx in candidates:
        if len(chosen) >= limit:
            break
        if tx.hash in seen:
            continue
        seen.add(tx.hash)
        reason = _includable(state, tx, chain_id, verified)
        if reason is not None:
            dropped.append((tx, reason))
            continue
        state.put(nonce_key(tx.sender), tx.nonce.to_bytes(8, "big"))
        chosen.append(tx)
    return chosen, dropped


def check_block(block: Block, parent: Block, chain_id: str) -> None:
    """Ledger rules on a block's header that need no state."""
    h = block.header
    # Rule: a block belongs to this chain and extends its parent by one height.
    if h.chain_id != chain_id:
        raise BlockError(f"block is for chain {h.chain_id!r}")
    if h.parent_id != parent.id or h.height != parent.height + 1:
        raise BlockError("block does not extend its parent by one height")
    # Rule: the block time rule's chain part (types.block_time, the one the consensus core
    # applies): strictly after the parent, not before the parent's QC certified it. (Its clock
    # part binds when a validator votes; a block already certified is judged by the chain.)
    late = block_time_error(h, parent.header, None)
    if late is not None:
        raise BlockError(late)
    # Rule: the header commits to exactly these transactions.
    if not block.body_matches_header():
        raise BlockError("transaction root or count does not match the body")
