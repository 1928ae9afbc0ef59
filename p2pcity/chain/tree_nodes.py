"""The stored form of a state-tree node: its encoding, its decoding and its binary hash.

A node (``p2pcity.chain.tree``) is a leaf, ``0x00 || key_hash || value_hash``, or
16 slots, ``0x01 || u16 bitmap || entry...``, one 41-byte entry per child
present (kind: 1 leaf, 2 internal; its hash; the u64 version it was written
at). Its hash is not a hash of these bytes: it is the binary tree of
``p2pcity.chain.proof`` over the 4 levels the node spans (:func:`node_hash`),
so the stored layout can change without changing any root or proof.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from p2pcity.chain.proof import PLACEHOLDER

ARITY = 16
LEAF, INTERNAL = 1, 2  # a child's kind
CHILD_SIZE = 1 + 32 + 8
_INTERNAL_TAG = b"\x03"  # proof.internal_hash, inlined in the loop below (one call per hash saved)


class TreeError(RuntimeError):
    """The stored tree is missing a node it needs (corrupt store, or a pruned version)."""


class Ref(NamedTuple):
    """A child as its parent names it (a tuple: made for every node touched, so made cheaply)."""

    kind: int
    hash: bytes
    version: int


def nibble(k_hash: bytes, depth: int) -> int:
    """The child taken at nibble ``depth`` on the path of ``k_hash`` (0: leftmost)."""
    byte = k_hash[depth >> 1]
    return byte & 0x0F if depth & 1 else byte >> 4


# A node's 16 slots, each None or the child's stored entry: kind (1 byte), hash (32), u64 version.
# Kept as bytes: a node is read and rewritten whole, its children mostly untouched.
Slots = list[bytes | None]


def entry_of(ref: Ref | None) -> bytes | None:
    return None if ref is None else bytes((ref.kind,)) + ref.hash + ref.version.to_bytes(8, "big")


def ref_of(entry: bytes | None) -> Ref | None:
    return None if entry is None else Ref(entry[0], entry[1:33], int.from_bytes(entry[33:41], "big"))


def node_hash(slots: Slots) -> bytes:
    """The binary hash over ``slots`` (16: a node's 4 levels; or a power-of-two part of them):
    a lone leaf rises, an empty range is the placeholder (``proof``'s rules)."""
    hashes: list[bytes | None] = [None if e is None else e[1:33] for e in slots]
    lone = [e is not None and e[0] == LEAF for e in slots]
    sha256 = hashlib.sha256
    width = len(slots)
    while width > 1:
        for i in range(0, width, 2):
            left, right, up = hashes[i], hashes[i + 1], i >> 1
            if left is None:
                if right is None or lone[i + 1]:
                    hashes[up], lone[up] = right, right is not None
                else:
                    hashes[up], lone[up] = sha256(_INTERNAL_TAG + PLACEHOLDER + right).digest(), False
            elif right is None:
                if lone[i]:
                    hashes[up], lone[up] = left, True
                else:
                    hashes[up], lone[up] = sha256(_INTERNAL_TAG + left + PLACEHOLDER).digest(), False
            else:
                hashes[up], lone[up] = sha256(_INTERNAL_TAG + left + right).digest(), False
        width >>= 1
    return hashes[0] or PLACEHOLDER


def encode_node(slots: Slots) -> bytes:
    bitmap = 0
    for i, entry in enumerate(slots):
        if entry is not None:
            bitmap |= 1 << i
    return b"\x01" + bitmap.to_bytes(2, "big") + b"".join(e for e in slots if e is not None)


class Node:
    """A node read from the store: a leaf (``k_hash``, ``v_hash``) or 16 ``slots``."""

    __slots__ = ("k_hash", "slots", "v_hash")

    def __init__(self, raw: bytes, where: bytes) -> None:
        self.slots: Slots = []
        self.k_hash = b""
        self.v_hash = b""
        if len(raw) == 65 and raw[0] == 0:
            self.k_hash, self.v_hash = raw[1:33], raw[33:65]
            return
        bitmap = int.from_bytes(raw[1:3], "big") if len(raw) >= 3 and raw[0] == 1 else 0
        if bitmap == 0 or len(raw) != 3 + bitmap.bit_count() * CHILD_SIZE:
            raise TreeError(f"corrupt tree node {where.hex()}")
        slots: Slots = [None] * ARITY
        at = 3
        for i in range(ARITY):
            if bitmap >> i & 1:
                if raw[at] not in (LEAF, INTERNAL):
                    raise TreeError(f"corrupt tree node {where.hex()}")
                slots[i] = raw[at : at + CHILD_SIZE]
                at += CHILD_SIZE
        self.slots = slots

    @property
    def is_leaf(self) -> bool:
        return bool(self.k_hash)


__all__ = [
    "ARITY",
    "Node",
    "Ref",
    "Slots",
    "TreeError",
    "encode_node",
    "entry_of",
    "nibble",
    "node_hash",
    "ref_of",
]
