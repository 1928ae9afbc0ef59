"""One written form per thing: accounts in hex, public identities as p2pc1…; an account takes either."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcity.crypto.accounts import (
    AccountError,
    decode_identity,
    format_account,
    format_identity,
    parse_account,
    parse_account_hex,
    short_account,
)
from p2pcity.crypto.keys import Identity, IdentityError, PublicIdentity

accounts = st.binary(min_size=32, max_size=32)


@given(accounts)
def test_an_account_reads_back_from_its_hex_in_any_case(account: bytes) -> None:
    shown = format_account(account)
    assert len(shown) == 64 and shown == shown.lower()
    assert parse_account(shown) == parse_account(shown.upper()) == parse_account(f"  {shown}\n") == account
    assert short_account(shown) == shown[:16] + "…"


def test_a_public_identity_names_its_account() -> None:
    public = Identity.generate().public
    text = str(public)
    assert text == format_identity(public.signing_key, public.pre_key)
    assert decode_identity(text) == (public.signing_key, public.pre_key)
    assert parse_account(text) == parse_account(text.upper()) == public.signing_key
    assert parse_account_hex(text) == format_account(public.signing_key)
    assert PublicIdentity.parse(text) == public


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "has 0 hex digits"),
        ("alice", "is not an account"),
        ("ab" * 31, "has 62 hex digits, an account has 64"),
        ("ab" * 33, "has 66 hex digits"),
        ("0x" + "ab" * 32, "is not an account"),
        ("p2pc1", "wrong length"),
        ("p2pc1!!!!", "not valid base32"),
        ("<script>", "is not an account"),
    ],
)
def test_garbage_is_refused_saying_what_to_give(text: str, says: str) -> None:
    with pytest.raises(AccountError) as caught:
        parse_account(text)
    message = str(caught.value)
    assert says in message and "64 hex digits or a public identity p2pc1" in message
    assert "\n" not in message and len(message) < 200


def test_a_typo_in_an_identity_is_caught_by_its_checksum() -> None:
    text = str(Identity.generate().public)
    # A middle character: the last one also carries base32 padding bits, which decoding ignores.
    typo = text[:30] + ("a" if text[30] != "a" else "b") + text[31:]
    with pytest.raises(AccountError, match="checksum mismatch"):
        parse_account(typo)
    with pytest.raises(IdentityError, match="checksum mismatch"):
        PublicIdentity.parse(typo)


def test_an_identity_has_one_spelling() -> None:
    """The last digit's 3 spare bits are ignored by base32 decoding: a second spelling is refused."""
    text = str(Identity.generate().public)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    last = alphabet.index(text[-1])
    for spare in range(1, 8):  # the low 3 bits of the last 5-bit digit are padding
        twin = text[:-1] + alphabet[(last & ~7) | spare]
        with pytest.raises(AccountError, match="canonical form"):
            parse_account(twin)
    assert parse_account(text.upper()) == parse_account(text)


def test_where_an_identity_is_needed_an_account_is_refused_saying_why() -> None:
    account = format_account(Identity.generate().public.signing_key)
    needs = r"that is an account \(hex\); this needs the public identity p2pc1"
    with pytest.raises(IdentityError, match=needs):
        PublicIdentity.parse(account)
