"""SHA-256 hashing with domain separation, and the binary Merkle tree of transactions.

The Merkle tree follows RFC 6962 (Certificate Transparency): leaves and inner
nodes are hashed with different prefixes so that an inner node can never be
passed off as a leaf, and an odd node is promoted rather than duplicated (the
duplication in Bitcoin's tree lets two different lists share a root).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF = b"\x00"
_NODE = b"\x01"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tagged_hash(tag: bytes, *parts: bytes) -> bytes:
    """Hash ``parts`` under a domain tag; each part is length-prefixed so the split is unambiguous."""
    h = hashlib.sha256(tag)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def _leaf_hash(item: bytes) -> bytes:
    return hashlib.sha256(_LEAF + item).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def merkle_root(items: list[bytes]) -> bytes:
    """Root of the RFC 6962 tree over ``items`` (each item is typically a transaction hash)."""
    if not items:
        return EMPTY_ROOT
    level = [_leaf_hash(item) for item in items]
    while len(level) > 1:
        nxt = [_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Audit path for one leaf: sibling hashes from the leaf upward and on which side each sits."""

    index: int
    size: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "size": self.size, "siblings": [s.hex() for s in self.siblings]}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> MerkleProof:
        siblings = obj["siblings"]
        index, size = obj["index"], obj["size"]
        if not (isinstance(siblings, list) and isinstance(index, int) and isinstance(size, int)):
            raise ValueError("malformed Merkle proof")
        return cls(index, size, tuple(bytes.fromhex(str(s)) for s in siblings))


def merkle_proof(items: list[bytes], index: int) -> MerkleProof:
    if not 0 <= index < len(items):
        raise IndexError(f"leaf {index} out of range for {len(items)} items")
    siblings: list[bytes] = []
    level = [_leaf_hash(item) for item in items]
    pos = index
    while len(level) > 1:
        sibling = pos ^ 1
        if sibling < len(level):
            siblings.append(level[sibling])
        nxt = [_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        pos //= 2
    return MerkleProof(index, len(items), tuple(siblings))


def verify_merkle_proof(root: bytes, item: bytes, proof: MerkleProof) -> bool:
    """Check that ``item`` is leaf ``proof.index`` of a tree of ``proof.size`` leaves with ``root``.

    Needs nothing but the root from a block header, so a light client (a bank
    checking a certificate) does not have to trust the node that served it.
    """
    if not 0 <= proof.index < proof.size:
        return False
    node = _leaf_hash(item)
    pos, size = proof.index, proof.size
    siblings = iter(proof.siblings)
    while size > 1:
        if pos ^ 1 < size:
            sibling = next(siblings, None)
            if sibling is None:
                return False
            node = _node_hash(node, sibling) if pos % 2 == 0 else _node_hash(sibling, node)
        # else: the last odd node is promoted unchanged to the next level.
        pos //= 2
        size = (size + 1) // 2
    return next(siblings, None) is None and node == root
