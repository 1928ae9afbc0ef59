"""Pinned proofs: one key kept provable at one height after that height's tree nodes are pruned.

The validator set is pinned at every block that changes it (``chain/state.py``),
so a light client can check each epoch hand-over against the state root of the
hand-over's block long after the node pruned that version (``api/epochs.py``).
A pin lives in the tree's key space under ``0x00 'p' height key`` (see
``chain/tree.py``), outside the state root, and is never pruned.
"""

from __future__ import annotations

from p2pcity.chain.proof import StateProof, key_hash
from p2pcity.chain.tree import PINNED, ROOTS_SIZE, Reader, Roots, TreeError, pack_roots, prove, unpack_roots
from p2pcity.codec import DecodeError, decode, encode


def pinned_key(height: int, key: bytes) -> bytes:
    return PINNED + height.to_bytes(8, "big") + key


def pin(
    view: Reader, roots: Roots, height: int, key: bytes, value: bytes | None
) -> dict[bytes, bytes | None]:
    """The write that keeps ``key``'s ``value`` and proof at ``height`` after pruning (``view``:
    the tree with this height's nodes)."""
    value = value or b""
    state_proof = prove(view, roots, key)
    packed = pack_roots(roots) + len(value).to_bytes(4, "big") + value + encode(state_proof)
    return {pinned_key(height, key): packed}


def read_pinned(view: Reader, height: int, key: bytes) -> tuple[Roots, bytes | None, StateProof] | None:
    """The roots, value (None: absent) and proof of ``key`` pinned at ``height`` (None: none was)."""
    raw = view.state_get(pinned_key(height, key))
    if raw is None:
        return None
    at = ROOTS_SIZE + 4
    size = int.from_bytes(raw[ROOTS_SIZE:at], "big")
    try:
        state_proof = decode(StateProof, raw[at + size :])
    except DecodeError as exc:
        raise TreeError(f"corrupt pinned proof at height {height}: {exc}") from exc
    value = raw[at : at + size] if state_proof.leaf_key == key_hash(key) else None
    return unpack_roots(raw), value, state_proof
