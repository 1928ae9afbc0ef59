"""What can go wrong with the store; every failure is a :class:`StoreError` with a clear message."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot do what was asked: not a store, corrupt, wrong chain, I/O failure."""


class CommitOrderError(StoreError):
    """A block that does not extend the last committed block (wrong height or parent)."""


class BlobHashError(StoreError):
    """The bytes received do not hash to the blob's expected SHA-256; nothing was stored."""


class SafetyRegressionError(StoreError):
    """A consensus safety record that would lower the one on disk (a double-signing bug upstream)."""
