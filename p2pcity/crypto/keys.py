"""Ed25519 signing keys and the identity file of an account or a validator.

Signatures use libsodium through PyNaCl: about 10k verifies/s per core here,
five times pycryptodome's Ed25519 (shared/research/crypto-probe.md). An
identity also holds a secp256k1 secret for proxy re-encryption, so one file
is all a district or a citizen needs; its public form is one string:

    p2pc1<base32( ed25519 public key | secp256k1 compressed PRE key | checksum )>
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
import nacl.bindings
from nacl.exceptions import BadSignatureError

from p2pcity._files import write_private
from p2pcity.crypto.accounts import (
    PRE_KEY_SIZE,
    AccountError,
    decode_identity,
    format_identity,
)

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
PRE_PUBLIC_KEY_SIZE = PRE_KEY_SIZE
_IDENTITY_FILE_KIND = "p2pcity-identity"
_IDENTITY_FILE_VERSION = 1


class IdentityError(ValueError):
    """A key, signature or identity that is malformed, foreign or corrupt."""


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification; False for any malformed input rather than an exception."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 key pair from a 32-byte seed."""

    seed: bytes
    public_key: bytes
    _secret: bytes  # libsodium's 64-byte expanded secret (seed | public key)

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        if len(seed) != 32:
            raise IdentityError("an Ed25519 seed is 32 bytes")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        return cls(seed, public, secret)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_seed(secrets.token_bytes(32))

    def sign(self, message: bytes) -> bytes:
        # crypto_sign returns signature | message; the detached call is not exposed by PyNaCl.
        return bytes(nacl.bindings.crypto_sign(message, self._secret)[:SIGNATURE_SIZE])

    def __repr__(self) -> str:  # never print the seed
        return f"SigningKey(public_key={self.public_key.hex()})"


def pre_public_key(pre_secret: bytes) -> bytes:
    """Compressed secp256k1 public key for a PRE secret scalar."""
    try:
        return bytes(coincurve.PrivateKey(pre_secret).public_key.format(compressed=True))
    except Exception as exc:  # coincurve raises ValueError/TypeError for out-of-range scalars
        raise IdentityError(f"invalid secp256k1 secret: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What others need to know about a holder: who signs, and where to re-encrypt to."""

    signing_key: bytes  # Ed25519 public key, 32 bytes
    pre_key: bytes  # secp256k1 compressed public key, 33 bytes

    def __str__(self) -> str:
        return format_identity(self.signing_key, self.pre_key)

    @classmethod
    def parse(cls, text: str) -> PublicIdentity:
        text = text.strip()
        if re.fullmatch(r"[0-9a-fA-F]{64}", text):
            raise IdentityError(
                "that is an account (hex); this needs the public identity p2pc1…, which also holds the "
                "key proxies re-encrypt to: ask its holder for 'p2pcity keys show'"
            )
        try:
            signing_key, pre_key = decode_identity(text)
        except AccountError as exc:
            raise IdentityError(str(exc)) from exc
        try:
            coincurve.PublicKey(pre_key)
        except Exception as exc:
            raise IdentityError("public identity holds an invalid secp256k1 key") from exc
        return cls(signing_key, pre_key)


@dataclass(frozen=True, slots=True)
class Identity:
    """The secret side: an Ed25519 signing key and a secp256k1 PRE secret."""

    signer: SigningKey
    pre_secret: bytes

    @classmethod
    def generate(cls) -> Identity:
        while True:
            candidate = secrets.token_bytes(32)
            try:
                pre_public_key(candidate)
            except IdentityError:  # astronomically unlikely: scalar 0 or >= n
                continue
            return cls(SigningKey.generate(), candidate)

    @property
    def public(self) -> PublicIdentity:
        return PublicIdentity(self.signer.public_key, pre_public_key(self.pre_secret))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": _IDENTITY_FILE_KIND,
            "version": _IDENTITY_FILE_VERSION,
            "ed25519_seed": self.signer.seed.hex(),
            "pre_secret": self.pre_secret.hex(),
            "public": str(self.public),
        }

    @classmethod
    def from_json(cls, obj: object) -> Identity:
        if not isinstance(obj, dict) or obj.get("kind") != _IDENTITY_FILE_KIND:
            raise IdentityError("not a p2pcity identity file")
        if obj.get("version") != _IDENTITY_FILE_VERSION:
            raise IdentityError(f"unsupported identity file version {obj.get('version')!r}")
        try:
            seed = bytes.fromhex(str(obj["ed25519_seed"]))
            pre_secret = bytes.fromhex(str(obj["pre_secret"]))
        except (KeyError, ValueError) as exc:
            raise IdentityError("identity file is missing or has malformed keys") from exc
        identity = cls(SigningKey.from_seed(seed), pre_secret)
        declared = obj.get("public")
        if declared is not None and declared != str(identity.public):
            raise IdentityError("identity file is corrupt: its public part does not match its keys")
        return identity

    def save(self, path: Path, *, overwrite: bool = False) -> None:
        """Write with mode 0600, atomically, never clobbering an existing key by accident."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise IdentityError(f"{path} already exists; refusing to overwrite a key file")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Identity:
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError as exc:
            raise IdentityError(f"key file {path} does not exist") from exc
        except UnicodeDecodeError as exc:
            raise IdentityError(
                f"{path} is not a p2pcity identity file (it is binary, like a node's libp2p key "
                f"p2p.key): give keys/identity.json or a file made by 'p2pcity keys new'"
            ) from exc
        except OSError as exc:
            raise IdentityError(f"cannot read key file {path}: {exc}") from exc
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IdentityError(f"{path} is not a p2pcity identity file (bad JSON)") from exc
        try:
            return cls.from_json(obj)
        except IdentityError as exc:
            raise IdentityError(f"{path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Identity({self.public})"
