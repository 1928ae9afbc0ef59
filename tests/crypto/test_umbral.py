"""Our Umbral on its own: committed vectors, threshold properties, tampering, malformed bytes.

The cross-checks against the umbral-pre package live in test_umbral_compat.py;
this file needs only our code and the vectors in vectors/umbral.json (made by
vectors/make_umbral_vectors.py, partly with umbral-pre).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pcity.crypto import umbral
from p2pcity.crypto.umbral import (
    Capsule,
    CapsuleFrag,
    DecodeError,
    DecryptionError,
    KeyFrag,
    PublicKey,
    SecretKey,
    SecretKeyFactory,
    Signature,
    Signer,
    UmbralError,
    VerificationError,
    VerifiedCapsuleFrag,
    VerifiedKeyFrag,
)
from p2pcity.crypto.umbral.curve import Point
from p2pcity.crypto.umbral.hash_to_curve import hash_to_curve
from p2pcity.crypto.umbral.params import U

VECTORS_PATH = Path(__file__).parent / "vectors" / "umbral.json"

SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST = settings(max_examples=200, deadline=None)


# --- builders shared with the compat tests and the vector generator ---------


class ShakeRng:
    """Deterministic ``RandomBytes``: successive reads of one SHAKE-256 stream.

    The vector file documents this, so the "ours" vectors can be regenerated.
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._pos = 0

    def __call__(self, n: int) -> bytes:
        end = self._pos + n
        out = hashlib.shake_256(self._seed).digest(end)[self._pos : end]
        self._pos = end
        return out


def labelled_key(label: str) -> SecretKey:
    """A fixed secret key: SHA-256 of the label (always in [1, n-1] for these labels)."""
    return SecretKey.from_bytes(hashlib.sha256(label.encode()).digest())


@dataclasses.dataclass
class Party:
    alice: SecretKey
    bob: SecretKey
    signer_key: SecretKey

    @property
    def signer(self) -> Signer:
        return Signer(self.signer_key)

    @property
    def keys(self) -> tuple[PublicKey, PublicKey, PublicKey]:
        """(verifying, delegating, receiving), the order ``verify`` takes them."""
        return self.signer_key.public_key(), self.alice.public_key(), self.bob.public_key()


def fixed_party() -> Party:
    return Party(
        labelled_key("p2pcity/umbral/delegating"),
        labelled_key("p2pcity/umbral/receiving"),
        labelled_key("p2pcity/umbral/signer"),
    )


def deterministic_flow(seed: bytes, party: Party) -> dict[str, Any]:
    """Encrypt, delegate 2-of-3, re-encrypt all three, seal kfrag 0: every byte from ``seed``."""
    rng = ShakeRng(seed)
    plaintext = b"available but invisible"
    capsule, ciphertext = umbral.encrypt(party.alice.public_key(), plaintext, rng)
    kfrags = umbral.generate_kfrags(party.alice, party.bob.public_key(), party.signer, 2, 3, rng=rng)
    cfrags = [umbral.reencrypt(capsule, k, rng) for k in kfrags]
    sealed = umbral.encrypt_to(party.bob.public_key(), bytes(kfrags[0]), rng)
    return {
        "rng_seed": seed.hex(),
        "plaintext": plaintext.hex(),
        "capsule": bytes(capsule).hex(),
        "ciphertext": ciphertext.hex(),
        "threshold": 2,
        "kfrags": [bytes(k).hex() for k in kfrags],
        "cfrags": [bytes(c).hex() for c in cfrags],
        "encrypt_to": sealed.hex(),
    }


def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
    return data


def vector_cases(section: str) -> list[dict[str, str]]:
    # The generator imports this module before the file exists.
    return list(vectors()[section]) if VECTORS_PATH.exists() else []


def verified_cfrags(
    party: Party, capsule: Capsule, threshold: int, shares: int, rng: ShakeRng
) -> list[VerifiedCapsuleFrag]:
    kfrags = umbral.generate_kfrags(
        party.alice, party.bob.public_key(), party.signer, threshold, shares, rng=rng
    )
    return [umbral.reencrypt(capsule, k, rng) for k in kfrags]


def random_party(seed: bytes) -> Party:
    rng = ShakeRng(b"party" + seed)
    return Party(SecretKey.random(rng), SecretKey.random(rng), SecretKey.random(rng))


# --- vectors ------------------------------------------------------------------


def test_parameter_u_matches_vector() -> None:
    assert U.to_bytes().hex() == vectors()["parameters"]["u"]


@pytest.mark.parametrize("case", vector_cases("hash_to_curve"), ids=lambda c: c["msg"] or "empty")
def test_hash_to_curve_vectors(case: dict[str, str]) -> None:
    point = hash_to_curve(case["msg"].encode(), case["dst"].encode())
    assert point.to_bytes().hex() == case["point"]


def test_fixed_keys_give_fixed_public_keys() -> None:
    keys = vectors()["keys"]
    party = fixed_party()
    assert party.alice.to_secret_bytes().hex() == keys["delegating_sk"]
    assert party.alice.public_key().to_bytes().hex() == keys["delegating_pk"]
    assert party.bob.public_key().to_bytes().hex() == keys["receiving_pk"]
    assert party.signer.verifying_key().to_bytes().hex() == keys["verifying_pk"]


@pytest.mark.parametrize("case", vector_cases("secret_key_factory"), ids=lambda c: c["label"])
def test_secret_key_factory_vectors(case: dict[str, str]) -> None:
    factory = SecretKeyFactory(bytes.fromhex(case["seed"]))
    label = case["label"].encode()
    assert factory.make_key(label).to_secret_bytes().hex() == case["key"]
    assert factory.make_secret(label).hex() == case["secret"]
    sub = factory.make_factory(label)
    assert sub.make_key(label).to_secret_bytes().hex() == case["factory_key"]


def test_umbral_pre_vector_opens_with_our_code() -> None:
    """Objects umbral-pre made (random, frozen in the file) decode, verify and decrypt here."""
    v = vectors()["umbral_pre"]
    party = fixed_party()
    vk, dk, rk = party.keys
    capsule = Capsule.from_bytes(bytes.fromhex(v["capsule"]))
    assert Capsule.from_bytes_simple(bytes.fromhex(v["capsule_simple"])) == capsule
    assert bytes(capsule).hex() == v["capsule"]
    assert capsule.to_bytes_simple().hex() == v["capsule_simple"]
    ciphertext = bytes.fromhex(v["ciphertext"])
    plaintext = bytes.fromhex(v["plaintext"])
    assert umbral.decrypt_original(party.alice, capsule, ciphertext) == plaintext

    for kfrag_hex in v["kfrags"]:
        kfrag = KeyFrag.from_bytes(bytes.fromhex(kfrag_hex))
        assert bytes(kfrag).hex() == kfrag_hex
        kfrag.verify(vk, dk, rk)
    cfrags = []
    for cfrag_hex, simple_hex in zip(v["cfrags"], v["cfrags_simple"], strict=True):
        cfrag = CapsuleFrag.from_bytes(bytes.fromhex(cfrag_hex))
        assert CapsuleFrag.from_bytes_simple(bytes.fromhex(simple_hex)) == cfrag
        assert bytes(cfrag).hex() == cfrag_hex
        assert cfrag.to_bytes_simple().hex() == simple_hex
        cfrags.append(cfrag.verify(capsule, vk, dk, rk))
    for pair in itertools.combinations(cfrags, v["threshold"]):
        assert umbral.decrypt_reencrypted(party.bob, dk, capsule, pair, ciphertext) == plaintext


def test_our_deterministic_vector_is_stable() -> None:
    """Same seed, same keys: the very same bytes as committed (a regression check)."""
    v = vectors()["ours"]
    assert deterministic_flow(bytes.fromhex(v["rng_seed"]), fixed_party()) == v


# --- the threshold property -------------------------------------------------


@SLOW
@given(
    seed=st.binary(min_size=8, max_size=8),
    threshold=st.integers(1, 4),
    extra=st.integers(0, 2),
    data=st.data(),
)
def test_any_t_of_n_decrypt_and_t_minus_1_do_not(
    seed: bytes, threshold: int, extra: int, data: st.DataObject
) -> None:
    party = random_party(seed)
    rng = ShakeRng(seed)
    plaintext = data.draw(st.binary(max_size=200), label="plaintext")
    capsule, ciphertext = umbral.encrypt(party.alice.public_key(), plaintext, rng)
    cfrags = verified_cfrags(party, capsule, threshold, threshold + extra, rng)
    vk, dk, rk = party.keys
    # Over the wire and back, as a grantee would receive them.
    received = [CapsuleFrag.from_bytes(bytes(c)).verify(capsule, vk, dk, rk) for c in cfrags]
    chosen = data.draw(st.permutations(received), label="order")
    enough = chosen[:threshold]
    assert umbral.decrypt_reencrypted(party.bob, dk, capsule, enough, ciphertext) == plaintext
    if threshold > 1:
        with pytest.raises(DecryptionError):
            umbral.decrypt_reencrypted(party.bob, dk, capsule, chosen[: threshold - 1], ciphertext)


def test_threshold_one_is_plain_delegation() -> None:
    party = random_party(b"t1")
    capsule, ciphertext = umbral.encrypt(party.alice.public_key(), b"x")
    (cfrag,) = verified_cfrags(party, capsule, 1, 1, ShakeRng(b"t1"))
    assert umbral.decrypt_reencrypted(party.bob, party.keys[1], capsule, [cfrag], ciphertext) == b"x"


def test_more_than_threshold_cfrags_also_decrypt() -> None:
    party = random_party(b"more")
    capsule, ciphertext = umbral.encrypt(party.alice.public_key(), b"x")
    cfrags = verified_cfrags(party, capsule, 2, 4, ShakeRng(b"more"))
    assert umbral.decrypt_reencrypted(party.bob, party.keys[1], capsule, cfrags, ciphertext) == b"x"


# --- fixtures for the rejection tests ----------------------------------------


@dataclasses.dataclass
class Grant:
    party: Party
    capsule: Capsule
    ciphertext: bytes
    kfrags: list[VerifiedKeyFrag]
    cfrags: list[VerifiedCapsuleFrag]


@pytest.fixture(scope="module")
def grant() -> Grant:
    party = random_party(b"grant")
    rng = ShakeRng(b"grant")
    capsule, ciphertext = umbral.encrypt(party.alice.public_key(), b"secret data", rng)
    kfrags = umbral.generate_kfrags(party.alice, party.bob.public_key(), party.signer, 2, 3, rng=rng)
    cfrags = [umbral.reencrypt(capsule, k, rng) for k in kfrags]
    return Grant(party, capsule, ciphertext, kfrags, cfrags)


def other_point(tag: bytes) -> Point:
    return Point.base_mul(int.from_bytes(hashlib.sha256(tag).digest(), "big"))


# --- tampered capsule fragments ----------------------------------------------

CFRAG_FIELDS = ["point_e1", "point_v1", "kfrag_id", "precursor"]
PROOF_FIELDS = [
    "point_e2",
    "point_v2",
    "kfrag_commitment",
    "kfrag_pok",
    "signature",
    "kfrag_signature",
]


def replacement(field: str, grant: Grant) -> Any:
    if field == "kfrag_id":
        return bytes(32)
    if field == "signature":
        return 12345
    if field == "kfrag_signature":
        return grant.party.signer.sign(b"something else")
    return other_point(field.encode())


@pytest.mark.parametrize("field", CFRAG_FIELDS + PROOF_FIELDS)
def test_tampered_cfrag_field_is_rejected(grant: Grant, field: str) -> None:
    cfrag = grant.cfrags[0].cfrag
    if field in CFRAG_FIELDS:
        bad = dataclasses.replace(cfrag, **{field: replacement(field, grant)})
    else:
        proof = dataclasses.replace(cfrag.proof, **{field: replacement(field, grant)})
        bad = dataclasses.replace(cfrag, proof=proof)
    with pytest.raises(VerificationError):
        CapsuleFrag.from_bytes(bytes(bad)).verify(grant.capsule, *grant.party.keys)


@FAST
@given(index=st.integers(0, umbral.CFRAG_SIZE - 1), mask=st.integers(1, 255))
def test_any_flipped_cfrag_byte_is_rejected(grant: Grant, index: int, mask: int) -> None:
    data = bytearray(bytes(grant.cfrags[1]))
    data[index] ^= mask
    with pytest.raises(UmbralError):
        CapsuleFrag.from_bytes(bytes(data)).verify(grant.capsule, *grant.party.keys)


def test_cfrag_for_another_capsule_is_rejected(grant: Grant) -> None:
    other, _ = umbral.encrypt(grant.party.alice.public_key(), b"other")
    with pytest.raises(VerificationError):
        grant.cfrags[0].cfrag.verify(other, *grant.party.keys)


def test_cfrag_checked_against_wrong_keys_is_rejected(grant: Grant) -> None:
    vk, dk, rk = grant.party.keys
    carol = SecretKey.random().public_key()
    cfrag = grant.cfrags[0].cfrag
    for keys in ((carol, dk, rk), (vk, carol, rk), (vk, dk, carol)):
        with pytest.raises(VerificationError):
            cfrag.verify(grant.capsule, *keys)


# --- wrong grantee, mixed and repeated fragments -------------------------------


def test_wrong_grantee_cannot_decrypt(grant: Grant) -> None:
    carol = SecretKey.random()
    with pytest.raises(DecryptionError):
        umbral.decrypt_reencrypted(
            carol, grant.party.keys[1], grant.capsule, grant.cfrags[:2], grant.ciphertext
        )


def test_wrong_delegating_key_fails_the_capsule_check(grant: Grant) -> None:
    with pytest.raises(DecryptionError):
        umbral.decrypt_reencrypted(
            grant.party.bob,
            SecretKey.random().public_key(),
            grant.capsule,
            grant.cfrags[:2],
            grant.ciphertext,
        )


def test_repeated_cfrags_are_refused(grant: Grant) -> None:
    twice = [grant.cfrags[0], grant.cfrags[0]]
    with pytest.raises(DecryptionError, match="repeated"):
        umbral.decrypt_reencrypted(
            grant.party.bob, grant.party.keys[1], grant.capsule, twice, grant.ciphertext
        )


def test_cfrags_from_two_grants_are_refused(grant: Grant) -> None:
    party = grant.party
    other = umbral.generate_kfrags(party.alice, party.bob.public_key(), party.signer, 2, 3)
    mixed = [grant.cfrags[0], umbral.reencrypt(grant.capsule, other[1])]
    with pytest.raises(DecryptionError, match="different kfrag sets"):
        umbral.decrypt_reencrypted(party.bob, party.keys[1], grant.capsule, mixed, grant.ciphertext)


def test_no_cfrags_is_refused(grant: Grant) -> None:
    with pytest.raises(DecryptionError):
        umbral.decrypt_reencrypted(grant.party.bob, grant.party.keys[1], grant.capsule, [], grant.ciphertext)


def test_unverified_fragments_are_a_type_error(grant: Grant) -> None:
    with pytest.raises(TypeError):
        umbral.reencrypt(grant.capsule, grant.kfrags[0].unverify())  # type: ignore[arg-type]
    unverified = [c.unverify() for c in grant.cfrags[:2]]
    with pytest.raises(TypeError):
        umbral.decrypt_reencrypted(
            grant.party.bob,
            grant.party.keys[1],
            grant.capsule,
            unverified,  # type: ignore[arg-type]
            grant.ciphertext,
        )


# --- key fragments: the proxy's check ------------------------------------------

KFRAG_REPLACEMENTS: dict[str, Callable[[KeyFrag], Any]] = {
    "kfrag_id": lambda k: bytes(32),
    "key": lambda k: k.key + 1,
    "precursor": lambda k: other_point(b"precursor"),
    "commitment": lambda k: other_point(b"commitment"),
    "signature_for_proxy": lambda k: _foreign_sig(),
    "signature_for_receiver": lambda k: _foreign_sig(),
    "delegating_key_signed": lambda k: not k.delegating_key_signed,
    "receiving_key_signed": lambda k: not k.receiving_key_signed,
}


def _foreign_sig() -> Signature:
    return Signer(labelled_key("foreign")).sign(b"not a kfrag")


@pytest.mark.parametrize("field", sorted(KFRAG_REPLACEMENTS))
def test_tampered_kfrag_field_is_rejected(grant: Grant, field: str) -> None:
    kfrag = grant.kfrags[0].unverify()
    bad = dataclasses.replace(kfrag, **{field: KFRAG_REPLACEMENTS[field](kfrag)})
    with pytest.raises(VerificationError):
        KeyFrag.from_bytes(bytes(bad)).verify(*grant.party.keys)


@FAST
@given(index=st.integers(0, umbral.KFRAG_SIZE - 1), mask=st.integers(1, 255))
def test_any_flipped_kfrag_byte_is_rejected(grant: Grant, index: int, mask: int) -> None:
    data = bytearray(bytes(grant.kfrags[2]))
    data[index] ^= mask
    with pytest.raises(UmbralError):
        KeyFrag.from_bytes(bytes(data)).verify(*grant.party.keys)


def test_kfrag_needs_the_keys_it_signed(grant: Grant) -> None:
    vk, dk, rk = grant.party.keys
    kfrag = grant.kfrags[0].unverify()
    with pytest.raises(VerificationError, match="delegating"):
        kfrag.verify(vk, None, rk)
    with pytest.raises(VerificationError, match="receiving"):
        kfrag.verify(vk, dk, None)
    with pytest.raises(VerificationError):
        kfrag.verify(SecretKey.random().public_key(), dk, rk)
    with pytest.raises(VerificationError):
        kfrag.verify(vk, dk, SecretKey.random().public_key())


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=2)))
def test_kfrag_sign_flags(flags: tuple[bool, bool]) -> None:
    party = random_party(b"flags")
    vk, dk, rk = party.keys
    kfrags = umbral.generate_kfrags(party.alice, rk, party.signer, 2, 3, *flags)
    kfrag = KeyFrag.from_bytes(bytes(kfrags[0]))
    kfrag.verify(vk, dk if flags[0] else None, rk if flags[1] else None)
    kfrag.verify(vk, dk, rk)
    capsule, ciphertext = umbral.encrypt(dk, b"flags")
    cfrags = [umbral.reencrypt(capsule, k) for k in kfrags[1:]]
    checked = [c.unverify().verify(capsule, vk, dk, rk) for c in cfrags]
    assert umbral.decrypt_reencrypted(party.bob, dk, capsule, checked, ciphertext) == b"flags"


def test_bad_receiver_signature_is_caught_by_the_proxy(grant: Grant) -> None:
    """A delegator cannot frame proxies with a kfrag whose cfrags will fail at the grantee."""
    kfrag = grant.kfrags[0].unverify()
    bad = dataclasses.replace(kfrag, signature_for_receiver=_foreign_sig())
    vk, dk, rk = grant.party.keys
    with pytest.raises(VerificationError, match="receiver"):
        bad.verify(vk, dk, rk)


def test_generate_kfrags_refuses_bad_thresholds(grant: Grant) -> None:
    party = grant.party
    for threshold, shares in ((0, 3), (4, 3), (-1, 0)):
        with pytest.raises(UmbralError):
            umbral.generate_kfrags(party.alice, party.bob.public_key(), party.signer, threshold, shares)


# --- capsule, DEM and the sealing helpers --------------------------------------


def test_encrypt_roundtrip_and_sizes(grant: Grant) -> None:
    party = grant.party
    capsule, ciphertext = umbral.encrypt(party.alice.public_key(), b"abc")
    assert len(ciphertext) == 3 + 40
    assert len(bytes(capsule)) == umbral.CAPSULE_SIZE == 105
    assert len(capsule.to_bytes_simple()) == umbral.CAPSULE_SIMPLE_SIZE == 98
    assert len(bytes(grant.kfrags[0])) == umbral.KFRAG_SIZE == 310
    assert len(bytes(grant.cfrags[0])) == umbral.CFRAG_SIZE == 381
    assert len(grant.cfrags[0].to_bytes_simple()) == umbral.CFRAG_SIMPLE_SIZE == 359
    assert umbral.decrypt_original(party.alice, capsule, ciphertext) == b"abc"


@FAST
@given(index=st.integers(0, 104), mask=st.integers(1, 255))
def test_tampered_capsule_fails_its_self_check(grant: Grant, index: int, mask: int) -> None:
    data = bytearray(bytes(grant.capsule))
    data[index] ^= mask
    with pytest.raises(DecodeError):
        Capsule.from_bytes(bytes(data))


def test_tampered_ciphertext_and_wrong_key_fail(grant: Grant) -> None:
    alice = grant.party.alice
    capsule, ciphertext = umbral.encrypt(alice.public_key(), b"payload")
    for i in (0, 24, len(ciphertext) - 1):
        bad = bytearray(ciphertext)
        bad[i] ^= 1
        with pytest.raises(DecryptionError):
            umbral.decrypt_original(alice, capsule, bytes(bad))
    with pytest.raises(DecryptionError):
        umbral.decrypt_original(grant.party.bob, capsule, ciphertext)
    with pytest.raises(DecryptionError):
        umbral.decrypt_original(alice, grant.capsule, ciphertext)  # ciphertext under another capsule
    with pytest.raises(DecryptionError):
        umbral.decrypt_original(alice, capsule, ciphertext[:39])


@FAST
@given(data=st.binary(max_size=600))
def test_encrypt_to_roundtrip(grant: Grant, data: bytes) -> None:
    bob = grant.party.bob
    blob = umbral.encrypt_to(bob.public_key(), data)
    assert len(blob) == len(data) + 138
    assert umbral.decrypt_from(bob, blob) == data


def test_encrypt_to_wrong_key_or_tampering_fails(grant: Grant) -> None:
    bob = grant.party.bob
    blob = umbral.encrypt_to(bob.public_key(), b"kfrag bytes")
    with pytest.raises(DecryptionError):
        umbral.decrypt_from(grant.party.alice, blob)
    with pytest.raises(DecryptionError):
        umbral.decrypt_from(bob, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(DecodeError):
        umbral.decrypt_from(bob, blob[:137])


def test_signatures_and_keys(grant: Grant) -> None:
    signer = grant.party.signer
    sig = signer.sign(b"m")
    assert sig.verify(signer.verifying_key(), b"m")
    assert not sig.verify(signer.verifying_key(), b"n")
    assert not sig.verify(grant.party.alice.public_key(), b"m")
    assert Signature.from_bytes(bytes(sig)) == sig
    # A high-s twin (n - s) parses but never verifies, as in umbral-pre.
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s = bytes(sig)[:32], int.from_bytes(bytes(sig)[32:], "big")
    assert not Signature.from_bytes(r + (n - s).to_bytes(32, "big")).verify(signer.verifying_key(), b"m")
    sk = grant.party.alice
    assert SecretKey.from_bytes(sk.to_secret_bytes()).public_key() == sk.public_key()
    assert PublicKey.from_bytes(bytes(sk.public_key())) == sk.public_key()
    for secret in (sk, signer, SecretKeyFactory(bytes(32))):
        assert "..." in repr(secret)
        assert sk.to_secret_bytes().hex() not in repr(secret)


def test_errors_are_value_errors() -> None:
    for cls in (DecodeError, VerificationError, DecryptionError):
        assert issubclass(cls, UmbralError)
    assert issubclass(UmbralError, ValueError)


# --- malformed bytes: every decoder raises DecodeError, nothing deeper -------

DECODERS: dict[str, Callable[[Any], object]] = {
    "SecretKey": SecretKey.from_bytes,
    "PublicKey": PublicKey.from_bytes,
    "Signature": Signature.from_bytes,
    "SecretKeyFactory": SecretKeyFactory,
    "Capsule": Capsule.from_bytes,
    "Capsule.simple": Capsule.from_bytes_simple,
    "KeyFrag": KeyFrag.from_bytes,
    "CapsuleFrag": CapsuleFrag.from_bytes,
    "CapsuleFrag.simple": CapsuleFrag.from_bytes_simple,
}


def valid_encodings(grant: Grant) -> dict[str, bytes]:
    return {
        "SecretKey": grant.party.alice.to_secret_bytes(),
        "PublicKey": bytes(grant.party.alice.public_key()),
        "Signature": bytes(grant.party.signer.sign(b"m")),
        "SecretKeyFactory": bytes(32),
        "Capsule": bytes(grant.capsule),
        "Capsule.simple": grant.capsule.to_bytes_simple(),
        "KeyFrag": bytes(grant.kfrags[0]),
        "CapsuleFrag": bytes(grant.cfrags[0]),
        "CapsuleFrag.simple": grant.cfrags[0].to_bytes_simple(),
    }


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoder_refuses_wrong_types_and_lengths(grant: Grant, name: str) -> None:
    decode = DECODERS[name]
    good = valid_encodings(grant)[name]
    decode(good)
    decode(bytearray(good))
    for bad in (None, 7, "00" * len(good), [1, 2], b"", good[:-1], good + b"\x00"):
        with pytest.raises(DecodeError):
            decode(bad)


@FAST
@given(name=st.sampled_from(sorted(DECODERS)), data=st.binary(max_size=420))
def test_decoders_on_random_bytes(name: str, data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        DECODERS[name](data)


@FAST
@given(name=st.sampled_from(sorted(DECODERS)), data=st.data())
def test_decoders_on_mutated_encodings(grant: Grant, name: str, data: st.DataObject) -> None:
    good = bytearray(valid_encodings(grant)[name])
    index = data.draw(st.integers(0, len(good) - 1))
    good[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        DECODERS[name](bytes(good))


@FAST
@given(blob=st.binary(max_size=300))
def test_decrypt_from_random_bytes(grant: Grant, blob: bytes) -> None:
    with pytest.raises(UmbralError):
        umbral.decrypt_from(grant.party.bob, blob)


def test_point_and_scalar_edge_cases() -> None:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    for bad in (bytes(32), n.to_bytes(32, "big"), b"\xff" * 32):
        with pytest.raises(DecodeError):
            SecretKey.from_bytes(bad)
    g = Point.base_mul(1).to_bytes()
    for bad in (b"\x04" + g[1:], b"\x00" * 33, b"\x02" + b"\xff" * 32, g[:1] + bytes(32)):
        with pytest.raises(DecodeError):
            PublicKey.from_bytes(bad)
    with pytest.raises(UmbralError):
        Point.base_mul(5) * 0
    with pytest.raises(UmbralError):
        Point.base_mul(5) + Point.base_mul(n - 5)
