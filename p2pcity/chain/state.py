"""State views, overlays of uncommitted writes, the key layout and the state root.

Key layout (all keys are bytes; ``||`` is concatenation):

==========================  ===============================================
``n/`` || account           last used nonce of an account (8 bytes, big end)
``vset``                    the validator set (``ValidatorSet``)
``ep/`` || epoch            the validator-set history (``EpochEntry``; from the first change)
``d/`` || account           a district (``District``)
``ns/`` || namespace        the account that owns a record namespace
``r/`` || name              latest version of a record (``RecordEntry``)
``rv/`` || name || 0 || v   every version of a record, by 8-byte version
``ds/`` || dataset id       a dataset (``DatasetEntry``)
``dk/`` || delegating key    the dataset registered with that delegating key
``dc/`` || capsule          the dataset registered with that capsule
``g/`` || grant id          an access grant (``GrantEntry``)
``gf/`` || grant id         its key fragments refreshed to a later set (``FragmentsEntry``)
``a/`` || dataset || h || i one access request (``AccessEntry``), the audit log
``x/`` || tx hash           the receipt of a committed transaction
==========================  ===============================================

Tree keys (prefix ``0x00``, :mod:`p2pcity.chain.tree`) hold the authenticated
state tree itself, and the proof of the validator set pinned at every height
that changed it (genesis included), which epoch-change proofs are checked against.

The header's state root is ``state_root(tree_root, aux_root)``
(:mod:`p2pcity.chain.proof`). Every ledger key above is in the tree, so a
client can check any of them against a certified header, present or absent,
except the receipts (``x/``) and the record history (``rv/``),
:data:`UNTREED_PREFIXES`: one per transaction each, they would add two tree
paths per transaction (half the tree's writes) for what the header's
``tx_root`` proves already (a record version is written once, by the
transaction that put it; ``r/`` proves which version is the latest). They stay bound
by the aux chain, ``aux(h) = H(aux(h-1), H(sorted receipt writes of h))``, so
two nodes that disagree on a receipt still disagree on the root. The derived
indexes (``dk/``, ``dc/``, ``db/``) stay in the tree: they are written once
per dataset, and they decide which transactions are valid.

Benchmark only: ``P2PCITY_STATE_COMMITMENT=chained`` in a node's environment
(:data:`CHAINED`, read here and nowhere else) roots every block after the
genesis the way the chain did before the tree, ``H(parent root, H(sorted
writes))`` (:func:`chained_state_root`), and writes no tree nodes, so a testnet
can be measured with and without the tree in one run (``bench/bench_scale.py
--baseline-env``). Every node of a chain must run with the same value (the
roots differ); such a node proves nothing (its proof routes refuse) and it
pins no validator sets. The genesis keeps its tree root either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Protocol

from p2pcity.chain import proof, tree, tree_pins
from p2pcity.crypto.hashing import sha256, tagged_hash


class StateView(Protocol):
    """Read access to the state as of some block."""

    def state_get(self, key: bytes) -> bytes | None: ...

    def state_iter(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Keys starting with ``prefix`` (and not below ``start``), in key order."""
        ...


class MemoryState:
    """A plain in-memory state: genesis construction, tests and simulators."""

    def __init__(self, items: Mapping[bytes, bytes] | None = None) -> None:
        self.items: dict[bytes, bytes] = dict(items or {})

    def state_get(self, key: bytes) -> bytes | None:
        return self.items.get(key)

    def state_iter(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        low = start or prefix
        for key in sorted(k for k in self.items if k.startswith(prefix) and k >= low):
            yield key, self.items[key]

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            if value is None:
                self.items.pop(key, None)
            else:
                self.items[key] = value


class Overlay:
    """Uncommitted writes layered over a base view (a speculative block's state)."""

    def __init__(self, base: StateView, writes: Mapping[bytes, bytes | None] | None = None) -> None:
        self.base = base
        self.writes: dict[bytes, bytes | None] = dict(writes or {})

    def state_get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.state_get(key)

    def state_iter(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        low = start or prefix
        merged = dict(self.base.state_iter(prefix, start))
        for key, value in self.writes.items():
            if key.startswith(prefix) and key >= low:
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        for key in sorted(merged):
            yield key, merged[key]

    def put(self, key: bytes, value: bytes | None) -> None:
        self.writes[key] = value


UNTREED_PREFIXES = (b"x/", b"rv/")
_AUX_TAG = b"p2pcity/aux/v1"
_CHAINED_TAG = b"p2pcity/state/v1"
COMMITMENT_ENV = "P2PCITY_STATE_COMMITMENT"


def _chained_from_env() -> bool:
    value = os.environ.get(COMMITMENT_ENV, "tree")
    if value not in ("tree", "chained"):
        # A typo must not silently measure the tree as the baseline (or the baseline as the tree).
        raise RuntimeError(f"{COMMITMENT_ENV} is {value!r}: it must be 'tree' (the default) or 'chained'")
    return value == "chained"


CHAINED = _chained_from_env()
NO_TREE = (
    f"this node runs with {COMMITMENT_ENV}=chained, a benchmark-only setting: "
    "it keeps no state tree, so it serves no proofs"
)


class StateRootError(RuntimeError):
    """The parent's state has no tree roots matching its header (a corrupt or foreign state)."""


def in_tree(key: bytes) -> bool:
    """True for a ledger key the state tree holds (not a receipt, not the tree's own storage)."""
    return not key.startswith(UNTREED_PREFIXES) and not key.startswith(tree.TREE_PREFIX)


def next_aux_root(previous: bytes, writes: Mapping[bytes, bytes | None]) -> bytes:
    """The aux chain over the writes kept out of the tree."""
    untreed = sorted(k for k in writes if k.startswith(UNTREED_PREFIXES))
    digest = sha256(b"".join(_write_record(k, writes[k]) for k in untreed))
    return tagged_hash(_AUX_TAG, previous, digest)


def genesis_roots(
    genesis_hash: bytes, writes: Mapping[bytes, bytes | None]
) -> tuple[bytes, dict[bytes, bytes | None]]:
    """The genesis state root and the tree writes of the genesis state ``writes``."""
    aux = next_aux_root(genesis_hash, writes)
    changes = {k: v for k, v in writes.items() if in_tree(k)}
    roots, tree_writes = tree.apply(MemoryState(), None, 0, changes, aux)
    _pin_validator_set(MemoryState(), roots, 0, changes, tree_writes)
    return proof.state_root(roots.tree_root, roots.aux_root), tree_writes


def next_state_root(
    base: StateView, parent_root: bytes, height: int, writes: Mapping[bytes, bytes | None]
) -> tuple[bytes, dict[bytes, bytes | None]]:
    """The state root after ``writes`` at ``height`` on ``base`` (the state of ``parent_root``),
    and the tree writes that go with them."""
    if CHAINED:
        return chained_state_root(parent_root, writes), {}
    parent = tree.read_roots(base, height - 1)
    # Rule: the state we build on is the one the parent header certifies.
    if parent is None or proof.state_root(parent.tree_root, parent.aux_root) != parent_root:
        raise StateRootError(f"the state below height {height} does not match its header's state root")
    aux = next_aux_root(parent.aux_root, writes)
    changes = {k: v for k, v in writes.items() if in_tree(k)}
    roots, tree_writes = tree.apply(base, parent, height, changes, aux)
    _pin_validator_set(base, roots, height, changes, tree_writes)
    return proof.state_root(roots.tree_root, roots.aux_root), tree_writes


def chained_state_root(parent_root: bytes, writes: Mapping[bytes, bytes | None]) -> bytes:
    """The root without a tree: ``H(parent root, H(sorted writes))`` (the benchmark baseline)."""
    digest = sha256(b"".join(_write_record(k, writes[k]) for k in sorted(writes)))
    return tagged_hash(_CHAINED_TAG, parent_root, digest)


def _pin_validator_set(
    base: StateView,
    roots: tree.Roots,
    height: int,
    changes: Mapping[bytes, bytes | None],
    tree_writes: dict[bytes, bytes | None],
) -> None:
    # A light client checks each epoch hand-over's new set against the state of the block that
    # made the change, long after that height's tree nodes are pruned: keep that one proof.
    if VALIDATOR_SET in changes:
        value = changes[VALIDATOR_SET]
        tree_writes.update(tree_pins.pin(Overlay(base, tree_writes), roots, height, VALIDATOR_SET, value))


def _write_record(key: bytes, value: bytes | None) -> bytes:
    # Length prefixes keep (key, value) boundaries unambiguous; a deletion is marked apart
    # from an empty value.
    if value is None:
        return len(key).to_bytes(4, "big") + key + b"\xff\xff\xff\xff"
    return len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value


# --- key builders ------------------------------------------------------------

VALIDATOR_SET = b"vset"


def epoch_key(epoch: int) -> bytes:
    return b"ep/" + epoch.to_bytes(8, "big")


def nonce_key(account: bytes) -> bytes:
    return b"n/" + account


def district_key(account: bytes) -> bytes:
    return b"d/" + account


def namespace_key(namespace: str) -> bytes:
    return b"ns/" + namespace.encode()


def record_key(name: str) -> bytes:
    return b"r/" + name.encode()


def record_version_key(name: str, version: int) -> bytes:
    return b"rv/" + name.encode() + b"\x00" + version.to_bytes(8, "big")


def dataset_key(dataset_id: bytes) -> bytes:
    return b"ds/" + dataset_id


def delegating_key_index(delegating_key: bytes) -> bytes:
    return b"dk/" + delegating_key


def capsule_index(capsule: bytes) -> bytes:
    return b"dc/" + capsule


def blob_prefix(ciphertext_hash: bytes) -> bytes:
    """The datasets naming a ciphertext, so finding them is a seek, not a scan of ``ds/``."""
    return b"db/" + ciphertext_hash


def blob_index(ciphertext_hash: bytes, dataset_id: bytes) -> bytes:
    return blob_prefix(ciphertext_hash) + dataset_id


def grant_key(grant_id: bytes) -> bytes:
    return b"g/" + grant_id


def fragments_key(grant_id: bytes) -> bytes:
    return b"gf/" + grant_id


def access_prefix(dataset_id: bytes) -> bytes:
    return b"a/" + dataset_id


def access_key(dataset_id: bytes, height: int, index: int) -> bytes:
    return access_prefix(dataset_id) + height.to_bytes(8, "big") + index.to_bytes(4, "big")


def receipt_key(tx_hash: bytes) -> bytes:
    return b"x/" + tx_hash
