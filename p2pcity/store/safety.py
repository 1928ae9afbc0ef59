"""The store's one rule about the consensus safety record: it never moves backwards.

A validator that signed a vote in view ``v`` must never again believe it has
not: lowering ``last_voted_view``, ``last_timeout_view`` or the lock is how a
restarted or re-synced node double-signs. Views count within an epoch: the
record of a later epoch replaces the record of an earlier one, never the
other way round. Every caller that replaces the
record goes through :func:`check_monotonic`, so a bug anywhere above the store
(a core rebuilt from the wrong record, a stale copy written late) stops the
node with a clear error instead of reaching the network.
"""

from __future__ import annotations

from p2pcity.codec import DecodeError
from p2pcity.store.errors import SafetyRegressionError, StoreError
from p2pcity.types.consensus import SafetyState


def decode_safety(raw: bytes | None) -> SafetyState | None:
    if raw is None:
        return None
    try:
        return SafetyState.decode(raw)
    except DecodeError as exc:
        raise StoreError(f"corrupt consensus safety record: {exc}") from exc


def check_monotonic(old: SafetyState | None, new: SafetyState) -> None:
    """Raise :class:`SafetyRegressionError` if ``new`` lowers any part of ``old``."""
    if old is None:
        return
    # A new epoch starts a new record (its votes sign the epoch: views start again at 1).
    if new.epoch > old.epoch:
        return
    if new.epoch < old.epoch:
        raise SafetyRegressionError(
            f"refusing to lower the consensus safety record: epoch {old.epoch} -> {new.epoch}"
        )
    lowered = [
        f"{name} {before} -> {after}"
        for name, before, after in (
            ("last_voted_view", old.last_voted_view, new.last_voted_view),
            ("last_timeout_view", old.last_timeout_view, new.last_timeout_view),
            ("locked_qc view", old.locked_qc.view, new.locked_qc.view),
            ("high_qc view", old.high_qc.view, new.high_qc.view),
        )
        if after < before
    ]
    if lowered:
        raise SafetyRegressionError("refusing to lower the consensus safety record: " + ", ".join(lowered))
