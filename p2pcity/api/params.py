"""Request parameters that name an account: either form in (``p2pcity.crypto.accounts``), hex out.

A path or query value that is neither 64 hex digits nor a valid ``p2pc1…``
public identity is a 422, like every parameter that fails validation, with the one
line ``parse_account`` gives.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Query

from p2pcity.crypto.accounts import AccountError, parse_account

_ABOUT = "an account: 64 hex digits, or a public identity p2pc1… (names its account)"
AccountPath = Annotated[str, Path(max_length=200, description=_ABOUT)]
AccountFilter = Annotated[str | None, Query(max_length=200, description=_ABOUT)]


def account_of(text: str, what: str = "account") -> bytes:
    try:
        return parse_account(text)
    except AccountError as exc:
        raise HTTPException(422, f"{what}: {exc}") from exc


def maybe_account(text: str | None, what: str) -> bytes | None:
    return None if text is None else account_of(text, what)
