"""State proofs: the hashing rules of the state tree and the one verifier of its proofs.

Pure (hashlib only): the light client, the API and the tree import it, and an
SDK in another language re-implements exactly this (docs/state-proofs.md).

The state tree is a binary sparse Merkle tree over ``key_hash = SHA-256(key)``
(256 levels, bit 0 the most significant bit of byte 0), path-compressed as in
Diem's and Aptos' Jellyfish Merkle tree: a subtree holding one leaf is that
leaf, a subtree holding none is the placeholder. Hashes:

- placeholder (empty subtree): 32 zero bytes
- leaf:     ``SHA-256(0x02 || key_hash || value_hash)``, ``value_hash = SHA-256(value)``
- internal: ``SHA-256(0x03 || left || right)``

The header's ``state_root`` binds the tree and the chain of the writes kept
out of it (receipts, :data:`p2pcity.chain.state.UNTREED_PREFIXES`):
``tagged_hash("p2pcity/state/v2", tree_root, aux_root)``.

A proof of a key is the leaf found on the key's path (absent: the path ends
in an empty subtree) and the sibling hashes from the root down to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from p2pcity.codec import Hash, MaxLen
from p2pcity.crypto.hashing import tagged_hash

PLACEHOLDER = bytes(32)
MAX_DEPTH = 256
_LEAF = b"\x02"
_INTERNAL = b"\x03"
STATE_ROOT_TAG = b"p2pcity/state/v2"


class ProofError(ValueError):
    """A state proof that does not prove what it is offered for."""


def key_hash(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def value_hash(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def leaf_hash(k_hash: bytes, v_hash: bytes) -> bytes:
    return hashlib.sha256(_LEAF + k_hash + v_hash).digest()


def internal_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_INTERNAL + left + right).digest()


def state_root(tree_root: bytes, aux_root: bytes) -> bytes:
    """The header's state root: the tree's root bound with the chain of untreed writes."""
    return tagged_hash(STATE_ROOT_TAG, tree_root, aux_root)


def bit(k_hash: bytes, depth: int) -> int:
    """The branch taken at ``depth`` (0: left) on the path of ``k_hash``."""
    return (k_hash[depth >> 3] >> (7 - (depth & 7))) & 1


@dataclass(frozen=True, slots=True)
class StateProof:
    """The leaf on a key's path (empty ``leaf_key``: none) and the siblings, root first."""

    leaf_key: Annotated[bytes, MaxLen(32)]  # key hash of the leaf met, b"" for an empty subtree
    leaf_value: Annotated[bytes, MaxLen(32)]  # its value hash, b"" with it
    siblings: Annotated[tuple[Hash, ...], MaxLen(MAX_DEPTH)]


def proof_root(proof: StateProof, k_hash: bytes) -> bytes:
    """The tree root ``proof`` implies for the path of ``k_hash``."""
    if len(proof.siblings) > MAX_DEPTH:
        raise ProofError(f"a proof has at most {MAX_DEPTH} siblings")
    if proof.leaf_key:
        if len(proof.leaf_key) != 32 or len(proof.leaf_value) != 32:
            raise ProofError("a proof's leaf is a 32-byte key hash and a 32-byte value hash")
        node = leaf_hash(proof.leaf_key, proof.leaf_value)
    else:
        if proof.leaf_value:
            raise ProofError("a proof without a leaf key carries no leaf value")
        node = PLACEHOLDER
    for depth in range(len(proof.siblings) - 1, -1, -1):
        sibling = proof.siblings[depth]
        node = internal_hash(sibling, node) if bit(k_hash, depth) else internal_hash(node, sibling)
    return node


def verify(proof: StateProof, tree_root: bytes, key: bytes, value: bytes | None) -> None:
    """Check that the tree of ``tree_root`` maps ``key`` to ``value`` (None: holds no ``key``).

    Raises :class:`ProofError` saying what does not hold.
    """
    k_hash = key_hash(key)
    if value is not None:
        # Rule: membership needs this key's leaf with this value's hash.
        if proof.leaf_key != k_hash:
            raise ProofError("the proof's leaf is not the key's: the key is not proven present")
        if proof.leaf_value != value_hash(value):
            raise ProofError("the value does not match the proven leaf (the value was altered)")
    elif proof.leaf_key:
        # Rule: absence is an empty subtree on the key's path, or another key's leaf that
        # sits there because it shares the path down to it (and so holds the subtree alone).
        if proof.leaf_key == k_hash:
            raise ProofError("the proof shows the key present: its absence is fabricated")
        depth = len(proof.siblings)
        if any(bit(proof.leaf_key, d) != bit(k_hash, d) for d in range(depth)):
            raise ProofError("the proof's leaf is off the key's path")
    # Rule: the leaf and its siblings hash up to the root the certified header binds.
    if proof_root(proof, k_hash) != tree_root:
        raise ProofError("the proof does not hash to the certified state root")
