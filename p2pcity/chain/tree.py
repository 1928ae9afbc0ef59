"""The authenticated state tree, versioned by height, stored among the state's own keys.

Hashing and proof verification are in :mod:`p2pcity.chain.proof`; this module
keeps the nodes. Like Aptos' Jellyfish Merkle tree, a node is stored under
``(version, path)``, written once and never changed, and a parent names the
version of each child, so reading any retained version is point lookups and a
new version writes only the nodes on the changed paths. The nodes live in the
state key space (prefix ``0x00``, below every ledger key), so a speculative
block's new nodes ride in its overlay like any other write and commit in the
same atomic batch.

Keys (``u64``/``u16`` big-endian):

=====================================  =========================================
``0x00 't'`` version depth path(32)    a node: ``0x00`` key_hash value_hash (a
                                       leaf) or ``0x01`` then, per child, kind
                                       (0 empty, 1 leaf, 2 internal), hash and
                                       u64 version
``0x00 'h'`` height                    the roots after that height: u64 tree
                                       version, tree root, aux root
``0x00 's'`` version                   the keys of the nodes no longer reachable
                                       from ``version`` on (the prune list)
``0x00 'p'`` height key                a pinned proof: the roots of ``height``
                                       and the canonical ``StateProof`` of
                                       ``key`` there (never pruned)
=====================================  =========================================

A pinned proof keeps one key provable at one height after the height's
nodes are pruned: the validator set at every block that changed it, which
a light client checks each epoch hand-over against (:func:`pin`).

Pruning (:func:`prune_writes`) deletes what only versions older than the
retained depth reach; it is the node's choice, outside the state root.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from p2pcity.chain.proof import (
    MAX_DEPTH,
    PLACEHOLDER,
    StateProof,
    bit,
    internal_hash,
    key_hash,
    leaf_hash,
    value_hash,
)
from p2pcity.codec import DecodeError, decode, encode

TREE_PREFIX = b"\x00"
_NODE = b"\x00t"
_ROOTS = b"\x00h"
_STALE = b"\x00s"
_PINNED = b"\x00p"
_EMPTY, _LEAFKIND, _INTERNALKIND = 0, 1, 2
_NODE_KEY_SIZE = 2 + 8 + 2 + 32


class TreeError(RuntimeError):
    """The stored tree is missing a node it needs (corrupt store, or a pruned version)."""


class _Reader(Protocol):
    def state_get(self, key: bytes) -> bytes | None: ...


class Ref(NamedTuple):
    """A child as its parent names it (a tuple: made for every node touched, so made cheaply)."""

    kind: int
    hash: bytes
    version: int


@dataclass(frozen=True, slots=True)
class Roots:
    """What a height's header binds: the tree (its root node's version and hash) and the aux chain."""

    version: int
    tree_root: bytes
    aux_root: bytes


def node_key(version: int, depth: int, prefix: int) -> bytes:
    """Where the node at ``depth`` on path ``prefix`` (its first ``depth`` bits) of ``version`` lives."""
    path = (prefix << (MAX_DEPTH - depth)).to_bytes(32, "big")
    return _NODE + version.to_bytes(8, "big") + depth.to_bytes(2, "big") + path


def roots_key(height: int) -> bytes:
    return _ROOTS + height.to_bytes(8, "big")


def read_roots(view: _Reader, height: int) -> Roots | None:
    raw = view.state_get(roots_key(height))
    if raw is None:
        return None
    if len(raw) != 72:
        raise TreeError(f"corrupt tree roots at height {height}")
    return Roots(int.from_bytes(raw[:8], "big"), raw[8:40], raw[40:72])


def _pack_roots(roots: Roots) -> bytes:
    return roots.version.to_bytes(8, "big") + roots.tree_root + roots.aux_root


_EMPTY_CHILD = b"\x00" + PLACEHOLDER + bytes(8)
_KIND_BYTE = (b"\x00", b"\x01", b"\x02")


def _encode_child(ref: Ref | None) -> bytes:
    if ref is None:
        return _EMPTY_CHILD
    return _KIND_BYTE[ref.kind] + ref.hash + ref.version.to_bytes(8, "big")


def _decode_child(raw: bytes) -> Ref | None:
    if raw[0] == _EMPTY:
        return None
    return Ref(raw[0], raw[1:33], int.from_bytes(raw[33:41], "big"))


def _hash_of(ref: Ref | None) -> bytes:
    return PLACEHOLDER if ref is None else ref.hash


class Node:
    """A node read from the store: a leaf (``k_hash``, ``v_hash``) or an internal node."""

    __slots__ = ("k_hash", "left", "right", "v_hash")

    def __init__(self, raw: bytes, where: bytes) -> None:
        self.left: Ref | None = None
        self.right: Ref | None = None
        self.k_hash = b""
        self.v_hash = b""
        if len(raw) == 65 and raw[0] == 0:
            self.k_hash, self.v_hash = raw[1:33], raw[33:65]
        elif len(raw) == 83 and raw[0] == 1:
            self.left, self.right = _decode_child(raw[1:42]), _decode_child(raw[42:83])
        else:
            raise TreeError(f"corrupt tree node {where.hex()}")

    @property
    def is_leaf(self) -> bool:
        return bool(self.k_hash)


def _load(view: _Reader, ref: Ref, depth: int, prefix: int) -> tuple[bytes, Node]:
    key = node_key(ref.version, depth, prefix)
    raw = view.state_get(key)
    if raw is None:
        raise TreeError(f"tree node missing at version {ref.version}, depth {depth} (pruned or corrupt)")
    return key, Node(raw, key)


_Item = tuple[bytes, bytes | None]  # (key hash, value hash or None to delete)


class _Update:
    """One batch of changes applied at ``version``: new nodes, and the nodes they retire."""

    def __init__(self, view: _Reader, version: int) -> None:
        self.view = view
        self.version = version
        self.writes: dict[bytes, bytes | None] = {}
        self.retired: list[bytes] = []
        self._at = _NODE + version.to_bytes(8, "big")  # node keys of this version start so

    def _key(self, depth: int, prefix: int) -> bytes:
        return self._at + depth.to_bytes(2, "big") + (prefix << (MAX_DEPTH - depth)).to_bytes(32, "big")

    def retire(self, key: bytes) -> None:
        if key in self.writes:  # written earlier in this very batch (a leaf moved up twice)
            del self.writes[key]
        else:
            self.retired.append(key)

    def leaf(self, depth: int, prefix: int, k_hash: bytes, v_hash: bytes) -> Ref:
        self.writes[self._key(depth, prefix)] = b"\x00" + k_hash + v_hash
        return Ref(_LEAFKIND, leaf_hash(k_hash, v_hash), self.version)

    def internal(self, depth: int, prefix: int, left: Ref | None, right: Ref | None) -> Ref | None:
        """The node for a subtree with these children, in canonical form (one leaf: that leaf)."""
        if left is None and right is None:
            return None
        lone = right if left is None else left if right is None else None
        if lone is not None and lone.kind == _LEAFKIND:
            # A lone leaf rises to where its subtree starts: rewritten at this depth.
            side = 1 if left is None else 0
            source = _Pending(self) if lone.version == self.version else self.view
            key, node = _load(source, lone, depth + 1, prefix * 2 + side)
            self.retire(key)
            return self.leaf(depth, prefix, node.k_hash, node.v_hash)
        self.writes[self._key(depth, prefix)] = b"\x01" + _encode_child(left) + _encode_child(right)
        return Ref(_INTERNALKIND, internal_hash(_hash_of(left), _hash_of(right)), self.version)

    def build(self, depth: int, prefix: int, items: list[tuple[bytes, bytes]]) -> Ref | None:
        """A fresh subtree at ``depth`` on ``prefix`` holding ``items`` (sorted by key hash)."""
        if not items:
            return None
        if len(items) == 1:
            return self.leaf(depth, prefix, items[0][0], items[0][1])
        if depth >= MAX_DEPTH:
            raise TreeError("two keys share all 256 bits of their hash")
        cut = _split(items, depth, prefix)
        left = self.build(depth + 1, prefix * 2, items[:cut])
        right = self.build(depth + 1, prefix * 2 + 1, items[cut:])
        return self.internal(depth, prefix, left, right)

    def update(self, ref: Ref | None, depth: int, prefix: int, items: list[_Item]) -> Ref | None:
        """The subtree at ``depth`` on ``prefix`` once ``items`` (sorted, on that path) apply."""
        if not items:
            return ref
        if ref is None:
            return self.build(depth, prefix, [(k, v) for k, v in items if v is not None])
        key, node = _load(self.view, ref, depth, prefix)
        if node.is_leaf:
            merged = {node.k_hash: node.v_hash}
            for k, v in items:
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            if merged == {node.k_hash: node.v_hash}:
                return ref
            self.retire(key)
            return self.build(depth, prefix, sorted(merged.items()))
        if depth >= MAX_DEPTH:
            raise TreeError("an internal node at the tree's full depth")
        cut = _split(items, depth, prefix)
        left = self.update(node.left, depth + 1, prefix * 2, items[:cut])
        right = self.update(node.right, depth + 1, prefix * 2 + 1, items[cut:])
        if left == node.left and right == node.right:
            return ref
        self.retire(key)
        return self.internal(depth, prefix, left, right)


class _Pending:
    """Reads nodes written earlier in the same batch."""

    def __init__(self, update: _Update) -> None:
        self._update = update

    def state_get(self, key: bytes) -> bytes | None:
        return self._update.writes.get(key)


def _split(items: list[tuple[bytes, bytes]] | list[_Item], depth: int, prefix: int) -> int:
    """Index of the first item whose path turns right at ``depth`` (items sorted, all on ``prefix``)."""
    # The first key hash at or above prefix||1||0...0 is the first one on the right.
    boundary = ((prefix * 2 + 1) << (MAX_DEPTH - 1 - depth)).to_bytes(32, "big")
    return bisect.bisect_left(items, (boundary,))


def apply(
    view: _Reader,
    parent: Roots | None,
    version: int,
    changes: Mapping[bytes, bytes | None],
    aux_root: bytes,
) -> tuple[Roots, dict[bytes, bytes | None]]:
    """Apply ledger ``changes`` (key -> value, None deletes) on the tree of ``parent`` at ``version``.

    Returns the new roots and every write the tree needs (nodes, prune list, the roots of
    ``version``), to go in the same batch as ``changes``.
    """
    items = sorted(
        (key_hash(k), None if v is None else value_hash(v)) for k, v in changes.items()
    )
    update = _Update(view, version)
    old = None if parent is None or parent.tree_root == PLACEHOLDER else Ref(
        _INTERNALKIND, parent.tree_root, parent.version
    )
    if old is not None:
        # The root's kind is read from the node itself; the hash and version are all a parent holds.
        _, node = _load(view, old, 0, 0)
        if node.is_leaf:
            old = Ref(_LEAFKIND, old.hash, old.version)
    new = update.update(old, 0, 0, items)
    if new is old:
        roots = Roots(parent.version if parent else version, _hash_of(new), aux_root)
    else:
        roots = Roots(version, _hash_of(new), aux_root)
    update.writes[roots_key(version)] = _pack_roots(roots)
    if update.retired:
        update.writes[_STALE + version.to_bytes(8, "big")] = b"".join(update.retired)
    return roots, update.writes


def prove(view: _Reader, roots: Roots, key: bytes) -> StateProof:
    """The proof of ``key`` (its value or its absence) in the tree of ``roots``."""
    k_hash = key_hash(key)
    if roots.tree_root == PLACEHOLDER:
        return StateProof(b"", b"", ())
    ref: Ref | None = Ref(_INTERNALKIND, roots.tree_root, roots.version)
    siblings: list[bytes] = []
    depth = prefix = 0
    while ref is not None:
        _, node = _load(view, ref, depth, prefix)
        if node.is_leaf:
            return StateProof(node.k_hash, node.v_hash, tuple(siblings))
        side = bit(k_hash, depth)
        siblings.append(_hash_of(node.left if side else node.right))
        ref = node.right if side else node.left
        prefix = prefix * 2 + side
        depth += 1
    return StateProof(b"", b"", tuple(siblings))


def prune_writes(view: _Reader, height: int, keep: int) -> dict[bytes, None]:
    """Deletes, for the commit of ``height``, of what only versions before ``height - keep`` reach.

    Versions ``height - keep`` .. ``height`` stay provable. It prunes one version, so it
    must run at every committed height.
    """
    oldest = height - keep
    if oldest <= 0:
        return {}
    stale_key = _STALE + oldest.to_bytes(8, "big")
    deletes: dict[bytes, None] = {stale_key: None, roots_key(oldest - 1): None}
    listed = view.state_get(stale_key) or b""
    for i in range(0, len(listed), _NODE_KEY_SIZE):
        deletes[listed[i : i + _NODE_KEY_SIZE]] = None
    return deletes


def prove_at(view: _Reader, height: int, key: bytes) -> tuple[Roots, StateProof]:
    """The roots of ``height`` and the proof of ``key`` in its tree (TreeError once pruned)."""
    roots = read_roots(view, height)
    if roots is None:
        raise TreeError(f"the state of height {height} is not retained (pruned, or not committed)")
    return roots, prove(view, roots, key)


def pinned_key(height: int, key: bytes) -> bytes:
    return _PINNED + height.to_bytes(8, "big") + key


def pin(
    view: _Reader, roots: Roots, height: int, key: bytes, value: bytes | None
) -> dict[bytes, bytes | None]:
    """The write that keeps ``key``'s ``value`` and proof at ``height`` after pruning (``view``:
    the tree with this height's nodes)."""
    value = value or b""
    state_proof = prove(view, roots, key)
    packed = _pack_roots(roots) + len(value).to_bytes(4, "big") + value + encode(state_proof)
    return {pinned_key(height, key): packed}


def read_pinned(view: _Reader, height: int, key: bytes) -> tuple[Roots, bytes | None, StateProof] | None:
    """The roots, value (None: absent) and proof of ``key`` pinned at ``height`` (None: none was)."""
    raw = view.state_get(pinned_key(height, key))
    if raw is None:
        return None
    size = int.from_bytes(raw[72:76], "big")
    try:
        state_proof = decode(StateProof, raw[76 + size :])
    except DecodeError as exc:
        raise TreeError(f"corrupt pinned proof at height {height}: {exc}") from exc
    value = raw[76 : 76 + size] if state_proof.leaf_key == key_hash(key) else None
    return Roots(int.from_bytes(raw[:8], "big"), raw[8:40], raw[40:72]), value, state_proof
