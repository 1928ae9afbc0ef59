"""How accounts and public identities are written, read back, and told apart. One definition for all.

An **account** is an Ed25519 public key: who signs (a transaction's sender, a
record's signer, a dataset's owner, a grantee, a validator). It is always
*shown* the same way, in the CLI, the API and the console: 64 lowercase hex
digits (tables shorten it to its first 16, never to another form).

A **public identity** (``p2pc1…``) is an account *and* the secp256k1 key that
proxies re-encrypt to, with a checksum. Only what must encrypt to someone (a
grant's ``--to``) needs it; ``p2pcity keys new`` prints it, and the account
inside it.

Every input that names an account takes either form (a p2pc1 identity names
its signing key); anything else is refused with one line saying what to give.
Pure: hashlib and base64 only (the CLI parses accounts without loading
libsodium or secp256k1).
"""

from __future__ import annotations

import base64
import hashlib
import re

ACCOUNT_SIZE = 32
PRE_KEY_SIZE = 33
IDENTITY_PREFIX = "p2pc1"
CHECKSUM_SIZE = 4
_CHECKSUM_TAG = b"p2pcity-identity"
_HEX_ACCOUNT = re.compile(r"[0-9a-fA-F]{64}")
_GIVE = "give the account as 64 hex digits or a public identity p2pc1… (as 'p2pcity keys show' prints)"


class AccountError(ValueError):
    """Text that is neither an account nor a public identity, or an identity that is corrupt."""


def format_account(account: bytes) -> str:
    """The one display form of an account: 64 lowercase hex digits."""
    if len(account) != ACCOUNT_SIZE:
        raise AccountError(f"an account is {ACCOUNT_SIZE} bytes, not {len(account)}")
    return account.hex()


def short_account(account: str) -> str:
    """An account shortened for a table: its first 16 hex digits (a prefix, so it can be searched)."""
    return account[:16] + "…"


def identity_checksum(body: bytes) -> bytes:
    return hashlib.sha256(_CHECKSUM_TAG + body).digest()[:CHECKSUM_SIZE]


def format_identity(account: bytes, pre_key: bytes) -> str:
    body = account + pre_key
    raw = body + identity_checksum(body)
    return IDENTITY_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


def decode_identity(text: str) -> tuple[bytes, bytes]:
    """(account, PRE key) of a ``p2pc1…`` public identity; checks prefix, base32, length and checksum.

    It does not check that the PRE key is a point on the curve (``PublicIdentity.parse`` does).
    """
    text = text.strip()
    if not text.startswith(IDENTITY_PREFIX):
        raise AccountError(f"a public identity starts with {IDENTITY_PREFIX!r}")
    b32 = text[len(IDENTITY_PREFIX) :].upper()
    try:
        raw = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    except ValueError as exc:
        raise AccountError("public identity is not valid base32") from exc
    if len(raw) != ACCOUNT_SIZE + PRE_KEY_SIZE + CHECKSUM_SIZE:
        raise AccountError("public identity has the wrong length")
    body, checksum = raw[:-CHECKSUM_SIZE], raw[-CHECKSUM_SIZE:]
    if identity_checksum(body) != checksum:
        raise AccountError("public identity checksum mismatch (typo?)")
    # 69 bytes fill 111 base32 digits with 3 bits to spare; b32decode ignores them, so a last digit
    # with those bits set would be a second spelling of the same identity. One identity, one string.
    if base64.b32encode(raw).decode().rstrip("=") != b32:
        raise AccountError("public identity is not in its canonical form (its last character was changed?)")
    return body[:ACCOUNT_SIZE], body[ACCOUNT_SIZE:]


def parse_account(text: str) -> bytes:
    """The account named by ``text``: 64 hex digits (any case) or a p2pc1 public identity."""
    text = text.strip()
    if _HEX_ACCOUNT.fullmatch(text):
        return bytes.fromhex(text)
    if text.lower().startswith(IDENTITY_PREFIX):
        try:
            return decode_identity(text.lower())[0]
        except AccountError as exc:
            raise AccountError(f"{exc}: {_GIVE}") from exc
    shown = text if len(text) <= 24 else text[:21] + "..."
    if re.fullmatch(r"[0-9a-fA-F]*", text):
        raise AccountError(f"{shown!r} has {len(text)} hex digits, an account has 64: {_GIVE}")
    raise AccountError(f"{shown!r} is not an account: {_GIVE}")


def parse_account_hex(text: str) -> str:
    """``parse_account``, as the canonical hex form (for what is passed on to a node's API)."""
    return parse_account(text).hex()
