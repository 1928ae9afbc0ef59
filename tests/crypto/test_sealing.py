"""Sealing small secrets to a PRE key with associated data (``umbral.encrypt_to``/``decrypt_from``)."""

from __future__ import annotations

import os

import pytest

from p2pcity.crypto import umbral


def test_a_sealed_blob_opens_only_with_its_key_and_exactly_its_associated_data() -> None:
    secret = umbral.SecretKey.random()
    other = umbral.SecretKey.random()
    data = os.urandom(310)
    sealed = umbral.encrypt_to(secret.public_key(), data, associated_data=b"grant A")
    assert umbral.decrypt_from(secret, sealed, b"grant A") == data
    for wrong in (b"", b"grant B", b"grant A\x00", b"grant "):
        with pytest.raises(umbral.DecryptionError):
            umbral.decrypt_from(secret, sealed, wrong)
    with pytest.raises(umbral.DecryptionError):
        umbral.decrypt_from(other, sealed, b"grant A")


def test_without_associated_data_it_is_plain_umbral_encryption() -> None:
    """Empty associated data keeps the umbral-pre form: ``decrypt_original`` opens it."""
    secret = umbral.SecretKey.random()
    sealed = umbral.encrypt_to(secret.public_key(), b"kfrag bytes")
    capsule = umbral.Capsule.from_bytes_simple(sealed[: umbral.CAPSULE_SIMPLE_SIZE])
    assert umbral.decrypt_original(secret, capsule, sealed[umbral.CAPSULE_SIMPLE_SIZE :]) == b"kfrag bytes"
    assert umbral.decrypt_from(secret, sealed) == b"kfrag bytes"
    with pytest.raises(umbral.DecryptionError):
        umbral.decrypt_from(secret, sealed, b"x")
