"""The validator set as consensus sees it: sorted public keys, quorum size and leader rotation."""

from __future__ import annotations

from collections.abc import Iterable

from p2pcity.types.block import quorum_size


class ValidatorSet:
    """Validators identified by their Ed25519 public keys (32 bytes).

    The keys are sorted so that every node derives the same leader order from
    the same set, whatever order it was configured in.
    """

    __slots__ = ("_index", "keys", "quorum", "tolerance")

    def __init__(self, keys: Iterable[bytes]) -> None:
        ordered = tuple(sorted(set(keys)))
        if not ordered:
            raise ValueError("a validator set needs at least one validator")
        if any(len(k) != 32 for k in ordered):
            raise ValueError("validator keys are 32-byte Ed25519 public keys")
        self.keys: tuple[bytes, ...] = ordered
        self._index = {k: i for i, k in enumerate(ordered)}
        self.quorum = quorum_size(len(ordered))  # 2f+1
        self.tolerance = (len(ordered) - 1) // 3  # f

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def leader(self, view: int) -> bytes:
        """Round-robin: the leader of ``view`` is ``validators[view % n]``."""
        return self.keys[view % len(self.keys)]
