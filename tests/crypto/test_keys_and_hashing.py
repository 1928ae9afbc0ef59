"""Identities, key files and the Merkle tree with its light-client proofs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcity.crypto.hashing import EMPTY_ROOT, merkle_proof, merkle_root, verify_merkle_proof
from p2pcity.crypto.keys import Identity, IdentityError, PublicIdentity, verify


def test_identity_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    identity = Identity.generate()
    path = tmp_path / "me.key"
    identity.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Identity.load(path).public == identity.public
    with pytest.raises(IdentityError, match="already exists"):
        identity.save(path)


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"kind": "ssh-key"}', '{"kind": "p2pcity-identity", "version": 9}'],
)
def test_corrupt_or_foreign_key_files_are_clear_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(IdentityError):
        Identity.load(path)


def test_key_file_whose_public_part_was_edited_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    Identity.generate().save(path)
    obj = json.loads(path.read_text())
    obj["public"] = str(Identity.generate().public)
    path.write_text(json.dumps(obj))
    with pytest.raises(IdentityError, match="corrupt"):
        Identity.load(path)


def test_public_identity_string_round_trip_and_typo_detection() -> None:
    public = Identity.generate().public
    text = str(public)
    assert PublicIdentity.parse(text) == public
    typo = text[:-3] + ("a" if text[-3] != "a" else "b") + text[-2:]
    with pytest.raises(IdentityError):
        PublicIdentity.parse(typo)
    with pytest.raises(IdentityError):
        PublicIdentity.parse("ssh-ed25519 AAAA")


def test_signatures_verify_only_for_their_message_and_key() -> None:
    a, b = Identity.generate(), Identity.generate()
    sig = a.signer.sign(b"deed")
    assert verify(a.signer.public_key, b"deed", sig)
    assert not verify(a.signer.public_key, b"deed!", sig)
    assert not verify(b.signer.public_key, b"deed", sig)
    assert not verify(a.signer.public_key[:31], b"deed", sig)
    assert not verify(a.signer.public_key, b"deed", sig[:63])


def test_empty_tree() -> None:
    assert merkle_root([]) == EMPTY_ROOT


@given(st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=40), st.data())
def test_every_leaf_has_a_proof_that_verifies_and_only_for_itself(
    items: list[bytes], data: st.DataObject
) -> None:
    root = merkle_root(items)
    index = data.draw(st.integers(0, len(items) - 1))
    proof = merkle_proof(items, index)
    assert verify_merkle_proof(root, items[index], proof)
    assert not verify_merkle_proof(root, items[index] + b"!", proof)
    if len(items) > 1:
        other = (index + 1) % len(items)
        if items[other] != items[index]:
            assert not verify_merkle_proof(root, items[other], proof)


def test_inner_node_cannot_pose_as_a_leaf() -> None:
    items = [b"a", b"b", b"c", b"d"]
    root = merkle_root(items)
    # A second-preimage attempt: claim a two-leaf tree whose leaves are the inner nodes.
    proof = merkle_proof(items, 0)
    assert not verify_merkle_proof(root, proof.siblings[0], proof)
