"""The authenticated state tree, versioned by height, stored among the state's own keys.

Hashing and proof verification are in :mod:`p2pcity.chain.proof`: the tree *is*
the binary, path-compressed sparse Merkle tree defined there, and its root and
proofs are that tree's. What this module chooses is how it is stored: as in
Aptos' Jellyfish Merkle tree, in 16-ary nodes, one per nibble (4 bits) of the
key hash, each holding the 4 binary levels under it. A write then touches
about a quarter of the nodes a binary layout would (a path of ~log16(n) nodes,
not ~log2(n)); a node's binary hash is recomputed from its children when it is
written (:func:`_node_hash`), and proofs are cut from it per binary level.

A node is stored under ``(version, path)``, written once and never changed, and
a parent names the version of each child, so reading any retained version is
point lookups and a new version writes only the nodes on the changed paths. The
nodes live in the state key space (prefix ``0x00``, below every ledger key), so
a speculative block's new nodes ride in its overlay like any other write and
commit in the same atomic batch.

Layout rules (they make the stored tree the binary tree of ``proof``):

- a subtree (at nibble depth ``d``, on the path ``prefix`` of ``d`` nibbles)
  holding no key is absent; holding one key, it is that key's leaf, stored at
  ``(d, prefix)``; holding more, a 16-ary node there;
- within a node, a binary sub-range holding one leaf and nothing else hashes
  as that leaf (it rises, as in the binary tree); one holding nothing is the
  placeholder.

Keys (``u64``/``u16`` big-endian):

=====================================  =========================================
``0x00 't'`` version depth path(32)    a node (``depth`` in nibbles, ``path``
                                       the prefix, left-aligned): ``0x00``
                                       key_hash value_hash (a leaf), or ``0x01``
                                       u16 bitmap of the children present, then
                                       per child kind (1 leaf, 2 internal), hash
                                       and u64 version
``0x00 'h'`` height                    the roots after that height: u64 tree
                                       version, tree root, aux root
``0x00 's'`` version                   the keys of the nodes no longer reachable
                                       from ``version`` on (the prune list)
``0x00 'p'`` height key                a pinned proof: the roots of ``height``,
                                       ``key``'s value there and its canonical
                                       ``StateProof`` (never pruned)
=====================================  =========================================

A pinned proof keeps one key provable at one height after the height's
nodes are pruned: the validator set at every block that changed it, which
a light client checks each epoch hand-over against (``tree_pins.pin``).

Pruning (:func:`prune_writes`) deletes what only versions older than the
retained depth reach; it is the node's choice, outside the state root.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from p2pcity.chain.proof import (
    MAX_DEPTH,
    PLACEHOLDER,
    StateProof,
    key_hash,
    leaf_hash,
    value_hash,
)
from p2pcity.chain.tree_nodes import (  # re-exported: callers name them tree.X
    ARITY,
    INTERNAL,
    LEAF,
    Node,
    Ref,
    Slots,
    TreeError,
    encode_node,
    nibble,
    node_hash,
    ref_of,
)
from p2pcity.chain.tree_nodes import entry_of as _entry

TREE_PREFIX = b"\x00"
_NODE = b"\x00t"
_ROOTS = b"\x00h"
_STALE = b"\x00s"
PINNED = b"\x00p"  # the pinned proofs of tree_pins.py
_NODE_KEY_SIZE = 2 + 8 + 2 + 32
MAX_NIBBLES = MAX_DEPTH // 4
ROOTS_SIZE = 8 + 32 + 32


class Reader(Protocol):
    def state_get(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Roots:
    """What a height's header binds: the tree (its root node's version and hash) and the aux chain."""

    version: int
    tree_root: bytes
    aux_root: bytes


def _path(depth: int, prefix: int) -> bytes:
    return (prefix << (MAX_DEPTH - 4 * depth)).to_bytes(32, "big")


def node_key(version: int, depth: int, prefix: int) -> bytes:
    """Where the node at nibble ``depth`` on path ``prefix`` (its first ``depth`` nibbles) of
    ``version`` lives."""
    return _NODE + version.to_bytes(8, "big") + depth.to_bytes(2, "big") + _path(depth, prefix)


def roots_key(height: int) -> bytes:
    return _ROOTS + height.to_bytes(8, "big")


def read_roots(view: Reader, height: int) -> Roots | None:
    raw = view.state_get(roots_key(height))
    if raw is None:
        return None
    if len(raw) != ROOTS_SIZE:
        raise TreeError(f"corrupt tree roots at height {height}")
    return unpack_roots(raw)


def pack_roots(roots: Roots) -> bytes:
    return roots.version.to_bytes(8, "big") + roots.tree_root + roots.aux_root


def unpack_roots(raw: bytes) -> Roots:
    """The roots :func:`pack_roots` wrote in the first ``ROOTS_SIZE`` bytes of ``raw``."""
    return Roots(int.from_bytes(raw[:8], "big"), raw[8:40], raw[40:72])


def _load(view: Reader, ref: Ref, depth: int, prefix: int) -> tuple[bytes, Node]:
    key = node_key(ref.version, depth, prefix)
    raw = view.state_get(key)
    if raw is None:
        raise TreeError(f"tree node missing at version {ref.version}, depth {depth} (pruned or corrupt)")
    return key, Node(raw, key)


_Item = tuple[bytes, bytes | None]  # (key hash, value hash or None to delete)


def _groups(items: list[tuple[bytes, bytes]] | list[_Item], depth: int) -> list[tuple[int, int, int]]:
    """(nibble, start, end) of the runs of ``items`` (sorted by key hash) by their nibble at ``depth``."""
    runs = []
    start = 0
    current = nibble(items[0][0], depth)
    for i in range(1, len(items)):
        n = nibble(items[i][0], depth)
        if n != current:
            runs.append((current, start, i))
            start, current = i, n
    runs.append((current, start, len(items)))
    return runs


class _Update:
    """One batch of changes applied at ``version``: new nodes, and the nodes they retire."""

    def __init__(self, view: Reader, version: int) -> None:
        self.view = view
        self.version = version
        self.writes: dict[bytes, bytes | None] = {}
        self.retired: list[bytes] = []
        self._at = _NODE + version.to_bytes(8, "big")  # node keys of this version start so

    def _key(self, depth: int, prefix: int) -> bytes:
        return self._at + depth.to_bytes(2, "big") + _path(depth, prefix)

    def retire(self, key: bytes) -> None:
        if key in self.writes:  # written earlier in this very batch (a leaf moved up twice)
            del self.writes[key]
        else:
            self.retired.append(key)

    def leaf(self, depth: int, prefix: int, k_hash: bytes, v_hash: bytes) -> Ref:
        self.writes[self._key(depth, prefix)] = b"\x00" + k_hash + v_hash
        return Ref(LEAF, leaf_hash(k_hash, v_hash), self.version)

    def internal(self, depth: int, prefix: int, slots: Slots) -> Ref | None:
        """The node for a subtree with these children, in canonical form (one leaf: that leaf)."""
        present = [i for i, e in enumerate(slots) if e is not None]
        if not present:
            return None
        if len(present) == 1 and slots[present[0]][0] == LEAF:  # type: ignore[index]
            # A lone leaf rises to where its subtree starts: rewritten at this depth.
            slot = present[0]
            lone = ref_of(slots[slot])
            assert lone is not None
            source = _Pending(self) if lone.version == self.version else self.view
            key, node = _load(source, lone, depth + 1, prefix * ARITY + slot)
            self.retire(key)
            return self.leaf(depth, prefix, node.k_hash, node.v_hash)
        self.writes[self._key(depth, prefix)] = encode_node(slots)
        return Ref(INTERNAL, node_hash(slots), self.version)

    def build(self, depth: int, prefix: int, items: list[tuple[bytes, bytes]]) -> Ref | None:
        """A fresh subtree at ``depth`` on ``prefix`` holding ``items`` (sorted by key hash)."""
        if not items:
            return None
        if len(items) == 1:
            return self.leaf(depth, prefix, items[0][0], items[0][1])
        if depth >= MAX_NIBBLES:
            raise TreeError("two keys share all 256 bits of their hash")
        slots: Slots = [None] * ARITY
        for n, start, end in _groups(items, depth):
            slots[n] = _entry(self.build(depth + 1, prefix * ARITY + n, items[start:end]))
        return self.internal(depth, prefix, slots)

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
        if depth >= MAX_NIBBLES:
            raise TreeError("an internal node at the tree's full depth")
        slots = list(node.slots)
        changed = False
        for n, start, end in _groups(items, depth):
            old = ref_of(slots[n])
            child = self.update(old, depth + 1, prefix * ARITY + n, items[start:end])
            if child != old:
                slots[n], changed = _entry(child), True
        if not changed:
            return ref
        self.retire(key)
        return self.internal(depth, prefix, slots)


class _Pending:
    """Reads nodes written earlier in the same batch."""

    def __init__(self, update: _Update) -> None:
        self._update = update

    def state_get(self, key: bytes) -> bytes | None:
        return self._update.writes.get(key)


def _root_ref(view: Reader, roots: Roots) -> Ref | None:
    """The root as a reference (its kind read from the node itself: a lone key's leaf, or a node)."""
    if roots.tree_root == PLACEHOLDER:
        return None
    ref = Ref(INTERNAL, roots.tree_root, roots.version)
    _, node = _load(view, ref, 0, 0)
    return Ref(LEAF, ref.hash, ref.version) if node.is_leaf else ref


def apply(
    view: Reader,
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
    old = None if parent is None else _root_ref(view, parent)
    new = update.update(old, 0, 0, items)
    if new is old:
        roots = Roots(parent.version if parent else version, _hash_of(new), aux_root)
    else:
        roots = Roots(version, _hash_of(new), aux_root)
    update.writes[roots_key(version)] = pack_roots(roots)
    if update.retired:
        update.writes[_STALE + version.to_bytes(8, "big")] = b"".join(update.retired)
    return roots, update.writes


def _hash_of(ref: Ref | None) -> bytes:
    return PLACEHOLDER if ref is None else ref.hash


def _lone(slots: Slots, lo: int, hi: int) -> tuple[int, Ref] | bool | None:
    """In slots ``lo..hi``: None when empty, (slot, leaf) for one lone leaf, else True."""
    found: tuple[int, Ref] | None = None
    for i in range(lo, hi):
        entry = slots[i]
        if entry is not None:
            if found is not None or entry[0] != LEAF:
                return True
            found = (i, Ref(entry[0], entry[1:33], int.from_bytes(entry[33:41], "big")))
    return found


def prove(view: Reader, roots: Roots, key: bytes) -> StateProof:
    """The proof of ``key`` (its value or its absence) in the tree of ``roots``."""
    k_hash = key_hash(key)
    ref = _root_ref(view, roots)
    siblings: list[bytes] = []
    depth = prefix = 0
    while ref is not None:
        _, node = _load(view, ref, depth, prefix)
        if node.is_leaf:
            return StateProof(node.k_hash, node.v_hash, tuple(siblings))
        slots = node.slots
        n = nibble(k_hash, depth)
        lo, hi = 0, ARITY
        while hi - lo > 1:
            mid = (lo + hi) // 2
            # The sibling is the binary hash of the other half's slots.
            if n < mid:
                siblings.append(node_hash(slots[mid:hi]))
                hi = mid
            else:
                siblings.append(node_hash(slots[lo:mid]))
                lo = mid
            lone = _lone(slots, lo, hi)
            if lone is None:
                return StateProof(b"", b"", tuple(siblings))
            if isinstance(lone, tuple):
                slot, leaf = lone
                _, met = _load(view, leaf, depth + 1, prefix * ARITY + slot)
                return StateProof(met.k_hash, met.v_hash, tuple(siblings))
        ref = ref_of(slots[n])
        prefix = prefix * ARITY + n
        depth += 1
    return StateProof(b"", b"", tuple(siblings))


def children_of(node: Node, depth: int, prefix: int) -> list[tuple[Ref, int, int]]:
    """(child, its depth, its prefix) of a stored node (tests walk the tree with it)."""
    return [
        (Ref(e[0], e[1:33], int.from_bytes(e[33:41], "big")), depth + 1, prefix * ARITY + i)
        for i, e in enumerate(node.slots)
        if e is not None
    ]


def prune_writes(view: Reader, height: int, keep: int) -> dict[bytes, None]:
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


def prove_at(view: Reader, height: int, key: bytes) -> tuple[Roots, StateProof]:
    """The roots of ``height`` and the proof of ``key`` in its tree (TreeError once pruned)."""
    roots = read_roots(view, height)
    if roots is None:
        raise TreeError(f"the state of height {height} is not retained (pruned, or not committed)")
    return roots, prove(view, roots, key)


__all__ = [
    "TREE_PREFIX",
    "Node",
    "Ref",
    "Roots",
    "Slots",
    "TreeError",
    "apply",
    "children_of",
    "node_key",
    "pack_roots",
    "prove",
    "prove_at",
    "prune_writes",
    "read_roots",
    "roots_key",
    "unpack_roots",
]
