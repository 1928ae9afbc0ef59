"""Upload tickets: bound to chain, account, hash, size and expiry; each binding has its attack.

The attacks run against the real rule and against a planted rule that forgets to bind the
hash (a ticket for one blob then uploads any other): the suite must catch that one.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from p2pcity.crypto.keys import verify
from p2pcity.sharing.uploads import (
    TicketError,
    UploadTicket,
    check_ticket,
    parse_ticket,
    sign_ticket,
    ticket_message,
)
from tests.factories import identities

ALICE, MALLORY = identities(2, seed=90)
BLOB, OTHER = os.urandom(32), os.urandom(32)
NOW = 1_000_000
Rule = Callable[[UploadTicket, str, bytes, int, int], None]


def forgets_the_hash(ticket: UploadTicket, chain_id: str, blob_hash: bytes, size: int, now_ms: int) -> None:
    # Planted bug: the signature is checked over the hash the ticket was made for, whatever is uploaded.
    if ticket.size != size or ticket.expires_ms < now_ms:
        raise TicketError("size or expiry")
    if not verify(
        ticket.account,
        ticket_message(chain_id, ticket.account, BLOB, size, ticket.expires_ms),
        ticket.signature,
    ):
        raise TicketError("signature")


def attacks(rule: Rule) -> list[str]:
    """The attacks ``rule`` lets through."""
    good = parse_ticket(sign_ticket(ALICE.signer, "city", BLOB, 100, NOW + 1))
    rule(good, "city", BLOB, 100, NOW)  # the honest upload passes
    forged = UploadTicket(ALICE.signer.public_key, 100, NOW + 1, MALLORY.signer.sign(b"x" * 32))
    tries = {
        "another blob": (good, "city", OTHER, 100, NOW),
        "a bigger size": (good, "city", BLOB, 101, NOW),
        "expired": (good, "city", BLOB, 100, NOW + 2),
        "another chain": (good, "town", BLOB, 100, NOW),
        "forged signature": (forged, "city", BLOB, 100, NOW),
    }
    passed = []
    for name, args in tries.items():
        try:
            rule(*args)
        except TicketError:
            continue
        passed.append(name)
    return passed


def test_the_rule_refuses_every_attack() -> None:
    assert attacks(check_ticket) == []


def test_control_a_rule_without_the_hash_binding_is_caught() -> None:
    assert attacks(forgets_the_hash) == ["another blob"]


@pytest.mark.parametrize("text", ["", "a.b.c.d", "00.1.2", "zz.1.2.00", "00.1." + "9" * 30 + ".00"])
def test_malformed_tickets_are_a_clear_error(text: str) -> None:
    with pytest.raises(TicketError):
        parse_ticket(text)
