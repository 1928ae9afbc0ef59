"""One-line descriptions of events and actions for simulator traces."""

from __future__ import annotations

from p2pcity.consensus import Commit, PersistSafety
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal, Timeout, Vote


def describe(item: object) -> str:
    """A one-line description for traces."""
    name = type(item).__name__
    message = getattr(item, "message", None) or getattr(item, "proposal", None)
    for attr in ("vote", "timeout", "tc", "block"):
        message = message or getattr(item, attr, None)
    if isinstance(message, Proposal):
        b = message.block
        tc = f" tc={message.tc.view}" if message.tc else ""
        return f"{name} proposal v{b.view} h{b.height} {b.id.hex()[:8]} qc={b.justify.view}{tc}"
    if isinstance(message, Block):
        return f"{name} block v{message.view} h{message.height} {message.id.hex()[:8]}"
    if isinstance(message, Vote):
        return f"{name} vote v{message.view} {message.block_id.hex()[:8]} by {message.signer.hex()[:6]}"
    if isinstance(message, Timeout):
        return f"{name} timeout v{message.view} hqc={message.high_qc.view} by {message.signer.hex()[:6]}"
    if message is not None and hasattr(message, "signatures"):
        return f"{name} tc v{message.view} hqc={message.high_qc.view}"
    if isinstance(item, Commit):
        return f"Commit {[(b.height, b.id.hex()[:8]) for b in item.blocks]}"
    if isinstance(item, PersistSafety):
        s = item.state
        return (
            f"Persist voted={s.last_voted_view} timeout={s.last_timeout_view} "
            f"lock={s.locked_qc.view} high={s.high_qc.view}"
        )
    return repr(item)[:120]
