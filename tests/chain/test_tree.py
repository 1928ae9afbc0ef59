"""The state tree against a plain dict: roots, proofs of presence and absence, versions, pruning.

The oracle is :func:`reference_root`, the tree's definition written the naive way (recurse on
the whole key set), so the stored, versioned, incremental tree must agree with it after any
sequence of batches, however it got there. Planted-bug controls at the end: a tree that ignores
deletions and a verifier that skips the value check are both caught by these very checks.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcity.chain import proof, tree
from p2pcity.chain.proof import PLACEHOLDER, ProofError, StateProof, bit, key_hash, value_hash
from p2pcity.chain.state import MemoryState

Batches = list[dict[bytes, bytes | None]]


def reference_root(model: dict[bytes, bytes]) -> bytes:
    items = sorted((key_hash(k), value_hash(v)) for k, v in model.items())

    def root(depth: int, part: list[tuple[bytes, bytes]]) -> bytes:
        if not part:
            return PLACEHOLDER
        if len(part) == 1:
            return proof.leaf_hash(*part[0])
        left = [i for i in part if not bit(i[0], depth)]
        right = [i for i in part if bit(i[0], depth)]
        return proof.internal_hash(root(depth + 1, left), root(depth + 1, right))

    return root(0, items)


def run(batches: Batches, apply: Callable[..., tuple[tree.Roots, dict[bytes, bytes | None]]] = tree.apply):
    """Apply ``batches`` at versions 1, 2, ...; return the state, roots per version and models."""
    state = MemoryState()
    roots = [tree.Roots(0, PLACEHOLDER, bytes(32))]
    state.apply({tree.roots_key(0): tree.pack_roots(roots[0])})
    models: list[dict[bytes, bytes]] = [{}]
    for version, batch in enumerate(batches, start=1):
        new, writes = apply(state, roots[-1], version, batch, bytes(32))
        state.apply(writes)
        roots.append(new)
        model = dict(models[-1])
        for k, v in batch.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        models.append(model)
    return state, roots, models


def check(state: MemoryState, roots: list[tree.Roots], models: list[dict[bytes, bytes]],
          probes: list[bytes], verify: Callable[..., None] = proof.verify) -> None:
    """Every version's root is the oracle's; every key proves its value and every probe its state."""
    for r, model in zip(roots, models, strict=True):
        assert r.tree_root == reference_root(model)
        for key in list(model) + probes:
            p = tree.prove(state, r, key)
            verify(p, r.tree_root, key, model.get(key))
            # Rule under test: the opposite claim never verifies.
            other = None if key in model else b"forged"
            with pytest.raises(ProofError):
                verify(p, r.tree_root, key, other)
            if key in model:
                with pytest.raises(ProofError):
                    verify(p, r.tree_root, key, model[key] + b"!")


keys = st.binary(min_size=1, max_size=6)
batches = st.lists(
    st.dictionaries(keys, st.one_of(st.none(), st.binary(max_size=8)), max_size=12), min_size=1, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(batches, st.lists(keys, max_size=4))
def test_tree_matches_a_dict_through_any_batches(bs: Batches, probes: list[bytes]) -> None:
    state, roots, models = run(bs)
    check(state, roots, models, probes)


@settings(max_examples=40, deadline=None)
@given(batches)
def test_pruning_keeps_exactly_the_retained_versions(bs: Batches) -> None:
    state, roots, models = run(bs)
    head = len(bs)
    keep = 1
    for height in range(1, head + 1):
        state.apply(tree.prune_writes(state, height, keep))
    # Kept: the head and ``keep`` versions below it, still whole.
    check(state, roots[head - keep :], models[head - keep :], [])
    # The prune list and the roots of pruned heights are gone too (bounded storage).
    assert not any(k.startswith(b"\x00s" + (head - keep).to_bytes(8, "big")) for k in state.items)
    assert all(tree.read_roots(state, h) is None for h in range(0, max(0, head - keep - 1)))
    # Bounded: exactly the nodes the kept versions reach remain.
    stored = {k for k in state.items if k.startswith(b"\x00t")}
    assert stored == set().union(*(_reachable(state, r) for r in roots[head - keep :]))


def _reachable(state: MemoryState, roots: tree.Roots) -> set[bytes]:
    if roots.tree_root == PLACEHOLDER:
        return set()
    found: set[bytes] = set()
    todo: list[tuple[tree.Ref, int, int]] = [(tree.Ref(2, roots.tree_root, roots.version), 0, 0)]
    while todo:
        ref, depth, prefix = todo.pop()
        key, node = tree._load(state, ref, depth, prefix)
        found.add(key)
        todo.extend(tree.children_of(node, depth, prefix))
    return found


def test_a_pruned_version_fails_loudly_not_with_a_wrong_proof() -> None:
    state, roots, _ = run([{b"a": b"1", b"b": b"2"}, {b"a": b"3"}, {b"b": None}])
    for height in range(1, 4):
        state.apply(tree.prune_writes(state, height, 1))
    with pytest.raises(tree.TreeError):
        tree.prove(state, roots[1], b"a")


def test_tampering_is_rejected() -> None:
    state, roots, _ = run([{bytes([i]): bytes([i]) * 3 for i in range(40)}])
    r = roots[-1]
    p = tree.prove(state, r, b"\x07")
    proof.verify(p, r.tree_root, b"\x07", b"\x07" * 3)
    assert p.siblings, "forty keys make a tree with depth"
    # A changed sibling.
    bad = StateProof(p.leaf_key, p.leaf_value, (bytes(32), *p.siblings[1:]))
    with pytest.raises(ProofError, match="state root"):
        proof.verify(bad, r.tree_root, b"\x07", b"\x07" * 3)
    # A dropped sibling (a proof shortened to a shallower position).
    with pytest.raises(ProofError):
        proof.verify(StateProof(p.leaf_key, p.leaf_value, p.siblings[:-1]), r.tree_root, b"\x07", b"\x07" * 3)
    # The wrong root.
    with pytest.raises(ProofError, match="state root"):
        proof.verify(p, roots[0].tree_root, b"\x07", b"\x07" * 3)
    # A fabricated absence: another key's valid proof offered as this key's absence.
    other = tree.prove(state, r, b"\x08")
    with pytest.raises(ProofError):
        proof.verify(other, r.tree_root, b"\x07", None)
    # An empty-subtree claim for a present key.
    with pytest.raises(ProofError):
        proof.verify(StateProof(b"", b"", p.siblings), r.tree_root, b"\x07", None)
    # Malformed leaves.
    with pytest.raises(ProofError):
        proof.verify(StateProof(b"", p.leaf_value, p.siblings), r.tree_root, b"\x07", None)


def test_unchanged_writes_keep_the_version_and_root() -> None:
    _, roots, _ = run([{b"a": b"1", b"b": b"2"}, {b"a": b"1", b"zz": None}])
    assert roots[2] == tree.Roots(1, roots[1].tree_root, bytes(32))


# --- planted-bug controls ------------------------------------------------------------


class _IgnoresDeletions(tree._Update):
    def update(
        self, ref: tree.Ref | None, depth: int, prefix: int, items: list[tree._Item]
    ) -> tree.Ref | None:
        return super().update(ref, depth, prefix, [i for i in items if i[1] is not None])


def _apply_ignoring_deletions(view, parent, version, changes, aux):  # type: ignore[no-untyped-def]
    real = tree._Update
    tree._Update = _IgnoresDeletions  # type: ignore[misc]
    try:
        return tree.apply(view, parent, version, changes, aux)
    finally:
        tree._Update = real  # type: ignore[misc]


def _verify_skipping_value(p: StateProof, root: bytes, key: bytes, value: bytes | None) -> None:
    if proof.proof_root(p, key_hash(key)) != root:
        raise ProofError("root")


CONTROL = [{b"a": b"1", b"b": b"2", b"c": b"3"}, {b"b": None}]


def test_control_the_dict_model_check_catches_a_tree_that_ignores_deletions() -> None:
    check(*run(CONTROL), [])
    with pytest.raises(AssertionError):
        check(*run(CONTROL, _apply_ignoring_deletions), [])


def test_control_the_tamper_check_catches_a_verifier_that_skips_the_value() -> None:
    with pytest.raises(pytest.fail.Exception):
        check(*run(CONTROL), [], verify=_verify_skipping_value)


def test_a_deep_tree_matches_the_oracle_through_growth_and_shrinking() -> None:
    """Over a thousand keys: paths three and four nibbles deep, leaves that rise across node
    boundaries as their neighbours are deleted, and every kind of 16-ary node on the way."""
    grow = {b"k%d" % i: b"v%d" % i for i in range(1200)}
    shrink: dict[bytes, bytes | None] = {b"k%d" % i: None for i in range(0, 1200, 3)}
    update: dict[bytes, bytes | None] = {b"k%d" % i: b"w" for i in range(1, 1200, 7)}
    state, roots, models = run([grow, shrink, update, {k: None for k in grow}])
    for r, model in zip(roots, models, strict=True):
        assert r.tree_root == reference_root(model)
    probes = [b"k%d" % i for i in range(0, 1200, 61)] + [b"none%d" % i for i in range(20)]
    for key in probes:
        for r, model in zip(roots[1:3], models[1:3], strict=True):
            proof.verify(tree.prove(state, r, key), r.tree_root, key, model.get(key))
    assert roots[-1].tree_root == PLACEHOLDER


def _hash_without_rising(slots: tree.Slots) -> bytes:
    """A node hash that forgets the path compression: a lone leaf does not rise."""
    level = [PLACEHOLDER if e is None else e[1:33] for e in slots]
    while len(level) > 1:
        level = [proof.internal_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def test_control_the_oracle_catches_a_node_hash_that_does_not_let_a_lone_leaf_rise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches = [{b"k%d" % i: b"v" for i in range(200)}]
    check(*run(batches), [])
    monkeypatch.setattr(tree, "node_hash", _hash_without_rising)
    with pytest.raises(AssertionError):
        check(*run(batches), [])
