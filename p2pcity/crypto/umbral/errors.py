"""The exceptions of the Umbral package.

Every failure a caller can provoke with bad input is an ``UmbralError`` (a
``ValueError``), so one ``except UmbralError`` covers decoding, verification
and decryption; the subclasses say which stage refused.
"""


class UmbralError(ValueError):
    """Base class: bad bytes, a failed proof or a failed decryption."""


class DecodeError(UmbralError):
    """Bytes that are not the canonical encoding of the expected object."""


class VerificationError(UmbralError):
    """A key fragment or capsule fragment whose signature or proof does not check."""


class DecryptionError(UmbralError):
    """A capsule that cannot be opened, or a ciphertext that does not authenticate."""
