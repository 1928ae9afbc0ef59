"""Cross-checks against NuCypher's umbral-pre 0.11 (Rust), in both directions.

umbral-pre is a test-only yardstick (``pip install umbral-pre==0.11.0``); the
whole module is skipped without it. "theirs -> ours" means umbral-pre made the
object and our code decodes, verifies, re-encrypts or decrypts it; "ours ->
theirs" the reverse.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pcity.crypto import umbral as ours
from p2pcity.crypto.umbral.params import U
from tests.crypto.test_umbral import ShakeRng, fixed_party, vectors

T: Any = pytest.importorskip(
    "umbral_pre",
    reason="umbral-pre not importable (pip install umbral-pre==0.11.0)",
    exc_type=ImportError,
)

SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Keys:
    """One set of secret keys, held by both implementations."""

    def __init__(self, rng: ShakeRng) -> None:
        self.alice = ours.SecretKey.random(rng)
        self.bob = ours.SecretKey.random(rng)
        self.signer_key = ours.SecretKey.random(rng)
        self.signer = ours.Signer(self.signer_key)
        self.t_alice = T.SecretKey.from_be_bytes(self.alice.to_secret_bytes())
        self.t_bob = T.SecretKey.from_be_bytes(self.bob.to_secret_bytes())
        self.t_signer = T.Signer(T.SecretKey.from_be_bytes(self.signer_key.to_secret_bytes()))

    @property
    def ours(self) -> tuple[ours.PublicKey, ours.PublicKey, ours.PublicKey]:
        return self.signer.verifying_key(), self.alice.public_key(), self.bob.public_key()

    @property
    def theirs(self) -> tuple[Any, Any, Any]:
        return self.t_signer.verifying_key(), self.t_alice.public_key(), self.t_bob.public_key()


@pytest.fixture
def keys() -> Keys:
    return Keys(ShakeRng(b"compat"))


# --- keys, signatures, parameters -------------------------------------------


def test_same_public_keys_and_parameters(keys: Keys) -> None:
    for mine, theirs in zip(keys.ours, keys.theirs, strict=True):
        assert mine.to_bytes() == theirs.to_compressed_bytes()
    x, y = T.Parameters().u.coordinates
    assert ours.PublicKey.from_bytes(bytes([2 + (y[-1] & 1)]) + x).point == U


def test_signatures_verify_both_ways(keys: Keys) -> None:
    vk, t_vk = keys.ours[0], keys.theirs[0]
    mine = keys.signer.sign(b"message")
    assert T.Signature.from_be_bytes(bytes(mine)).verify(t_vk, b"message")
    assert not T.Signature.from_be_bytes(bytes(mine)).verify(t_vk, b"other")
    theirs = keys.t_signer.sign(b"message")
    assert ours.Signature.from_bytes(theirs.to_be_bytes()).verify(vk, b"message")
    assert not ours.Signature.from_bytes(theirs.to_be_bytes()).verify(vk, b"other")


@SLOW
@given(seed=st.binary(min_size=32, max_size=32), label=st.binary(max_size=40))
def test_secret_key_factory_matches(seed: bytes, label: bytes) -> None:
    mine = ours.SecretKeyFactory(seed)
    theirs = T.SecretKeyFactory.from_secure_randomness(seed)
    assert mine.make_key(label).to_secret_bytes() == theirs.make_key(label).to_be_bytes()
    assert mine.make_secret(label) == theirs.make_secret(label)
    assert (
        mine.make_factory(label).make_key(b"k").to_secret_bytes()
        == theirs.make_factory(label).make_key(b"k").to_be_bytes()
    )


# --- theirs -> ours ------------------------------------------------------------


def test_their_capsule_opens_with_decrypt_original(keys: Keys) -> None:
    capsule, ciphertext = T.encrypt(keys.t_alice.public_key(), b"from rust")
    mine = ours.Capsule.from_bytes(bytes(capsule))
    assert bytes(mine) == bytes(capsule)
    assert ours.Capsule.from_bytes_simple(capsule.to_bytes_simple()) == mine
    assert mine.to_bytes_simple() == capsule.to_bytes_simple()
    assert ours.decrypt_original(keys.alice, mine, ciphertext) == b"from rust"


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=2)))
def test_their_kfrags_reencrypted_by_us(keys: Keys, flags: tuple[bool, bool]) -> None:
    vk, dk, rk = keys.ours
    t_vk, t_dk, t_rk = keys.theirs
    capsule, ciphertext = T.encrypt(t_dk, b"delegated")
    kfrags = T.generate_kfrags(keys.t_alice, t_rk, keys.t_signer, 2, 3, *flags)
    mine_capsule = ours.Capsule.from_bytes(bytes(capsule))
    verified = []
    for kfrag in kfrags:
        mine = ours.KeyFrag.from_bytes(bytes(kfrag))
        assert bytes(mine) == bytes(kfrag)
        verified.append(mine.verify(vk, dk if flags[0] else None, rk if flags[1] else None))
        mine.verify(vk, dk, rk)  # including their signature for the receiver
    cfrags = [ours.reencrypt(mine_capsule, k) for k in verified]
    # ...verified and opened by umbral-pre
    t_cfrags = [T.CapsuleFrag.from_bytes(bytes(c)).verify(capsule, t_vk, t_dk, t_rk) for c in cfrags]
    assert [bytes(c) for c in t_cfrags] == [bytes(c) for c in cfrags]
    assert [c.to_bytes_simple() for c in t_cfrags] == [c.to_bytes_simple() for c in cfrags]
    assert T.decrypt_reencrypted(keys.t_bob, t_dk, capsule, t_cfrags[1:], ciphertext) == b"delegated"
    # ...and by us
    back = [ours.CapsuleFrag.from_bytes(bytes(c)).verify(mine_capsule, vk, dk, rk) for c in cfrags]
    assert ours.decrypt_reencrypted(keys.bob, dk, mine_capsule, back[:2], ciphertext) == b"delegated"


def test_their_cfrags_verified_and_combined_by_us(keys: Keys) -> None:
    vk, dk, rk = keys.ours
    _t_vk, t_dk, t_rk = keys.theirs
    capsule, ciphertext = T.encrypt(t_dk, b"grantee side")
    kfrags = T.generate_kfrags(keys.t_alice, t_rk, keys.t_signer, 3, 5, True, True)
    cfrags = [T.reencrypt(capsule, k) for k in kfrags]
    mine_capsule = ours.Capsule.from_bytes(bytes(capsule))
    verified = []
    for cfrag in cfrags:
        mine = ours.CapsuleFrag.from_bytes(bytes(cfrag))
        assert ours.CapsuleFrag.from_bytes_simple(cfrag.to_bytes_simple()) == mine
        verified.append(mine.verify(mine_capsule, vk, dk, rk))
    for subset in itertools.combinations(verified, 3):
        assert ours.decrypt_reencrypted(keys.bob, dk, mine_capsule, subset, ciphertext) == (b"grantee side")
    with pytest.raises(ours.DecryptionError):
        ours.decrypt_reencrypted(keys.bob, dk, mine_capsule, verified[:2], ciphertext)


def test_their_tampered_cfrag_is_rejected_by_us(keys: Keys) -> None:
    vk, dk, rk = keys.ours
    capsule, _ = T.encrypt(keys.t_alice.public_key(), b"x")
    kfrags = T.generate_kfrags(keys.t_alice, keys.t_bob.public_key(), keys.t_signer, 2, 3, True, True)
    data = bytearray(bytes(T.reencrypt(capsule, kfrags[0])))
    mine_capsule = ours.Capsule.from_bytes(bytes(capsule))
    for index in range(0, len(data), 7):
        bad = bytearray(data)
        bad[index] ^= 0x40
        with pytest.raises(ours.UmbralError):
            ours.CapsuleFrag.from_bytes(bytes(bad)).verify(mine_capsule, vk, dk, rk)
        with pytest.raises((T.VerificationError, ValueError)):
            T.CapsuleFrag.from_bytes(bytes(bad)).verify(capsule, *keys.theirs)


# --- ours -> theirs ------------------------------------------------------------


def test_our_capsule_opens_with_their_decrypt_original(keys: Keys) -> None:
    capsule, ciphertext = ours.encrypt(keys.alice.public_key(), b"from python")
    theirs = T.Capsule.from_bytes(bytes(capsule))
    assert theirs.to_bytes_simple() == capsule.to_bytes_simple()
    assert T.decrypt_original(keys.t_alice, theirs, ciphertext) == b"from python"


def test_our_encrypt_to_blob_opens_with_umbral_pre(keys: Keys) -> None:
    blob = ours.encrypt_to(keys.bob.public_key(), b"a key fragment")
    capsule = ours.Capsule.from_bytes_simple(blob[: ours.CAPSULE_SIMPLE_SIZE])
    theirs = T.Capsule.from_bytes(bytes(capsule))
    opened = T.decrypt_original(keys.t_bob, theirs, blob[ours.CAPSULE_SIMPLE_SIZE :])
    assert opened == b"a key fragment"


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=2)))
def test_our_kfrags_used_by_umbral_pre(keys: Keys, flags: tuple[bool, bool]) -> None:
    vk, dk, rk = keys.ours
    t_vk, t_dk, t_rk = keys.theirs
    capsule, ciphertext = ours.encrypt(dk, b"delegated by python")
    t_capsule = T.Capsule.from_bytes(bytes(capsule))
    kfrags = ours.generate_kfrags(keys.alice, rk, keys.signer, 3, 5, *flags)
    t_kfrags = [
        T.KeyFrag.from_bytes(bytes(k)).verify(t_vk, t_dk if flags[0] else None, t_rk if flags[1] else None)
        for k in kfrags
    ]
    assert [bytes(k) for k in t_kfrags] == [bytes(k) for k in kfrags]
    t_cfrags = [T.reencrypt(t_capsule, k) for k in t_kfrags]
    expected = b"delegated by python"
    assert T.decrypt_reencrypted(keys.t_bob, t_dk, t_capsule, t_cfrags[2:], ciphertext) == expected
    mine = [ours.CapsuleFrag.from_bytes(bytes(c)).verify(capsule, vk, dk, rk) for c in t_cfrags]
    assert ours.decrypt_reencrypted(keys.bob, dk, capsule, mine[:3], ciphertext) == expected


def test_our_cfrags_verified_and_combined_by_umbral_pre(keys: Keys) -> None:
    t_vk, t_dk, t_rk = keys.theirs
    capsule, ciphertext = ours.encrypt(keys.alice.public_key(), b"python proxies")
    kfrags = ours.generate_kfrags(keys.alice, keys.bob.public_key(), keys.signer, 2, 3)
    cfrags = [ours.reencrypt(capsule, k) for k in kfrags]
    t_capsule = T.Capsule.from_bytes(bytes(capsule))
    t_cfrags = [T.CapsuleFrag.from_bytes(bytes(c)).verify(t_capsule, t_vk, t_dk, t_rk) for c in cfrags]
    for pair in itertools.combinations(t_cfrags, 2):
        assert T.decrypt_reencrypted(keys.t_bob, t_dk, t_capsule, list(pair), ciphertext) == (
            b"python proxies"
        )
    # A wrong grantee key fails umbral-pre's verification of our cfrags too.
    carol = T.SecretKey.random().public_key()
    with pytest.raises(T.VerificationError):
        T.CapsuleFrag.from_bytes(bytes(cfrags[0])).verify(t_capsule, t_vk, t_dk, carol)


def test_our_committed_vectors_are_accepted_by_umbral_pre() -> None:
    v = vectors()["ours"]
    party = fixed_party()
    t_alice = T.SecretKey.from_be_bytes(party.alice.to_secret_bytes())
    t_bob = T.SecretKey.from_be_bytes(party.bob.to_secret_bytes())
    t_vk = T.SecretKey.from_be_bytes(party.signer_key.to_secret_bytes()).public_key()
    t_dk, t_rk = t_alice.public_key(), t_bob.public_key()
    capsule = T.Capsule.from_bytes(bytes.fromhex(v["capsule"]))
    ciphertext = bytes.fromhex(v["ciphertext"])
    plaintext = bytes.fromhex(v["plaintext"])
    assert T.decrypt_original(t_alice, capsule, ciphertext) == plaintext
    for kfrag in v["kfrags"]:
        T.KeyFrag.from_bytes(bytes.fromhex(kfrag)).verify(t_vk, t_dk, t_rk)
    cfrags = [
        T.CapsuleFrag.from_bytes(bytes.fromhex(c)).verify(capsule, t_vk, t_dk, t_rk) for c in v["cfrags"]
    ]
    assert T.decrypt_reencrypted(t_bob, t_dk, capsule, cfrags[:2], ciphertext) == plaintext


# --- mixed proxies: some run umbral-pre, some run our code ---------------------


@SLOW
@given(
    seed=st.binary(min_size=8, max_size=8),
    threshold=st.integers(1, 4),
    extra=st.integers(0, 2),
    ours_delegates=st.booleans(),
    data=st.data(),
)
def test_mixed_proxies_any_t_of_n(
    seed: bytes, threshold: int, extra: int, ours_delegates: bool, data: st.DataObject
) -> None:
    keys = Keys(ShakeRng(seed))
    vk, dk, rk = keys.ours
    t_vk, t_dk, t_rk = keys.theirs
    shares = threshold + extra
    plaintext = data.draw(st.binary(max_size=100), label="plaintext")
    capsule, ciphertext = ours.encrypt(dk, plaintext, ShakeRng(seed + b"enc"))
    t_capsule = T.Capsule.from_bytes(bytes(capsule))
    if ours_delegates:
        kfrag_bytes = [bytes(k) for k in ours.generate_kfrags(keys.alice, rk, keys.signer, threshold, shares)]
    else:
        kfrag_bytes = [
            bytes(k)
            for k in T.generate_kfrags(keys.t_alice, t_rk, keys.t_signer, threshold, shares, True, True)
        ]
    # Each proxy independently runs one implementation or the other.
    runs_ours = data.draw(st.lists(st.booleans(), min_size=shares, max_size=shares), label="proxies")
    cfrag_bytes = []
    for kb, proxy_runs_ours in zip(kfrag_bytes, runs_ours, strict=True):
        if proxy_runs_ours:
            cfrag_bytes.append(bytes(ours.reencrypt(capsule, ours.KeyFrag.from_bytes(kb).verify(vk, dk, rk))))
        else:
            cfrag_bytes.append(
                bytes(T.reencrypt(t_capsule, T.KeyFrag.from_bytes(kb).verify(t_vk, t_dk, t_rk)))
            )
    chosen = data.draw(st.permutations(cfrag_bytes), label="order")[:threshold]
    mine = [ours.CapsuleFrag.from_bytes(c).verify(capsule, vk, dk, rk) for c in chosen]
    theirs = [T.CapsuleFrag.from_bytes(c).verify(t_capsule, t_vk, t_dk, t_rk) for c in chosen]
    assert ours.decrypt_reencrypted(keys.bob, dk, capsule, mine, ciphertext) == plaintext
    assert T.decrypt_reencrypted(keys.t_bob, t_dk, t_capsule, theirs, ciphertext) == plaintext
