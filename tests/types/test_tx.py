"""Transactions: signatures, chain binding and strict decoding."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcity.codec import encode
from p2pcity.types.tx import MAX_TX_SIZE, RecordPut, Transaction, TxError
from tests.factories import CHAIN, identities, record_tx

ALICE, BOB = identities(2)


def test_signed_transaction_round_trips_and_checks() -> None:
    tx = record_tx(ALICE, 1, "land/parcel-7")
    again = Transaction.decode(tx.encoded)
    again.check(CHAIN)
    assert again == tx and again.hash == tx.hash
    assert isinstance(again.payload, RecordPut)


@pytest.mark.parametrize("field", ["nonce", "kind", "body", "sender", "chain_id"])
def test_tampering_with_any_signed_field_breaks_the_signature(field: str) -> None:
    tx = record_tx(ALICE, 1, "land/parcel-7")
    changes = {
        "nonce": 2,
        "kind": "record.put",  # same kind but re-signed below would be fine; tamper body instead
        "body": RecordPut("land/parcel-8", 1, b"\1" * 32, 10, "text/plain", "{}"),
        "sender": BOB.signer.public_key,
        "chain_id": "other-city",
    }
    if field == "body":
        forged = replace(tx, body=encode(changes["body"]))
    elif field == "kind":
        forged = replace(tx, kind="access.revoke")
    else:
        forged = replace(tx, **{field: changes[field]})
    with pytest.raises(TxError):
        forged.check(forged.chain_id)


def test_wrong_chain_is_rejected() -> None:
    tx = record_tx(ALICE, 1, "land/parcel-7", chain_id="other-city")
    with pytest.raises(TxError, match="chain"):
        tx.check(CHAIN)


def test_flipped_signature_bit_is_rejected() -> None:
    tx = record_tx(ALICE, 1, "land/parcel-7")
    sig = bytearray(tx.signature)
    sig[5] ^= 1
    with pytest.raises(TxError, match="signature"):
        replace(tx, signature=bytes(sig)).check(CHAIN)


def test_unknown_kind_and_malformed_body_are_clear_errors() -> None:
    tx = record_tx(ALICE, 1, "land/parcel-7")
    with pytest.raises(TxError, match="unknown transaction kind"):
        replace(tx, kind="mint.money").check(CHAIN)
    with pytest.raises(TxError, match=r"malformed record\.put body"):
        replace(tx, body=b"\x93\x01\x02\x03").check(CHAIN)


def test_oversized_transaction_is_rejected() -> None:
    with pytest.raises(TxError, match="exceeds the limit"):
        Transaction.decode(b"\x96" + b"\x00" * MAX_TX_SIZE)


@settings(max_examples=200)
@given(st.data())
def test_truncated_or_mutated_bytes_raise_tx_error(data: st.DataObject) -> None:
    raw = bytearray(record_tx(ALICE, 1, "land/parcel-7").encoded)
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] ^= data.draw(st.integers(1, 255))
    try:
        tx = Transaction.decode(bytes(raw))
    except TxError:
        return
    with pytest.raises(TxError):  # decodes structurally, but then it cannot check out
        tx.check(CHAIN)
