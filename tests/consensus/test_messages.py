"""Consensus messages: canonical round trips, signing rules and strict decoding of junk."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcity.codec import DecodeError, encode
from p2pcity.consensus import event_from_bytes
from p2pcity.crypto.keys import verify
from p2pcity.types.consensus import (
    DoubleProposal,
    DoubleVote,
    Proposal,
    SafetyState,
    decode_message,
    encode_message,
)
from tests.sim.builders import (
    CHAIN,
    genesis_qc,
    keys,
    make_block,
    make_chain,
    rebuild,
    tc_for,
    timeout,
    tx_pool,
    vote,
)

K = keys(4)
CHAIN_BLOCKS = make_chain([1, 2, 3], K)


def samples() -> list[object]:
    b3 = CHAIN_BLOCKS[3]
    tc = tc_for(4, K[:3], b3.justify)
    return [
        vote(K[0], b3),
        timeout(K[1], 5, b3.justify),
        tc,
        Proposal(b3),
        Proposal(b3, tc),
    ]


@pytest.mark.parametrize("message", samples(), ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_its_canonical_bytes(message: object) -> None:
    data = encode_message(message)  # type: ignore[arg-type]
    assert decode_message(data) == message
    assert encode_message(decode_message(data)) == data


def test_a_proposal_with_transactions_round_trips() -> None:
    block = make_block(CHAIN_BLOCKS[1], 2, K, txs=tx_pool()[:5])
    again = decode_message(encode_message(Proposal(block)))
    assert isinstance(again, Proposal) and again.block.id == block.id and again.block.txs


def test_signing_bytes_are_domain_separated() -> None:
    b = CHAIN_BLOCKS[2]
    v = vote(K[0], b)
    t = timeout(K[0], b.view, b.justify)
    assert verify(v.signer, v.signing_bytes(CHAIN), v.signature)
    assert verify(t.signer, t.signing_bytes(CHAIN), t.signature)
    # A vote's signature is not a timeout's, nor valid on another chain.
    assert not verify(v.signer, t.signing_bytes(CHAIN), v.signature)
    assert not verify(v.signer, v.signing_bytes("other-city"), v.signature)


def test_safety_state_round_trips() -> None:
    state = SafetyState(7, 9, CHAIN_BLOCKS[2].justify, CHAIN_BLOCKS[3].justify)
    assert SafetyState.decode(state.encode()) == state
    assert SafetyState.decode(SafetyState.initial(genesis_qc()).encode()).high_qc == genesis_qc()


def test_evidence_verifies_and_rejects_forgeries() -> None:
    b = CHAIN_BLOCKS[2]
    other = rebuild(b, K[b.view % 4], timestamp_ms=999)
    proof = DoubleProposal(b.header, b.signature, other.header, other.signature)
    assert proof.verify() and proof.offender == b.header.proposer
    assert not DoubleProposal(b.header, b.signature, b.header, b.signature).verify()
    assert not DoubleProposal(b.header, b.signature, other.header, b.signature).verify()
    v1, v2 = vote(K[0], b), vote(K[0], other)
    double = DoubleVote(v1, v2)
    assert double.verify(CHAIN)
    assert not double.verify("other-city")
    forged = DoubleVote(v1, replace(v2, signature=v1.signature))
    assert not forged.verify(CHAIN)
    assert not DoubleVote(v1, v1).verify(CHAIN)  # one vote twice is no equivocation
    for item in (proof, double):
        assert type(item).__name__ and encode(item)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x09\x90",  # unknown tag
        b"\x02",  # a vote with no body
        b"\x02\x90",  # an empty array
        b"\x02\x95\x01\xc4\x01\x00\x01\xc4\x20" + bytes(32) + b"\xc4\x40" + bytes(64),  # 1-byte id
    ],
)
def test_malformed_bytes_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(data)


def test_truncated_padded_and_non_canonical_messages_are_rejected() -> None:
    data = encode_message(samples()[1])  # type: ignore[arg-type]
    for bad in (data[:-1], data + b"\x00", data[:1] + b"\xdc\x00\x04" + data[2:]):
        with pytest.raises(DecodeError):
            decode_message(bad)
    # A vote whose view is packed in 8 bytes instead of 1 decodes to the same value: refused.
    v = encode_message(samples()[0])  # type: ignore[arg-type]
    assert v[3] == 3  # tag, array header, epoch 0, then the view (3) as a positive fixint
    with pytest.raises(DecodeError, match="canonical"):
        decode_message(v[:3] + b"\xcf" + (3).to_bytes(8, "big") + v[4:])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        event_from_bytes(data, now_ms=0)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_messages_decode_or_fail_cleanly(data: st.DataObject) -> None:
    message = data.draw(st.sampled_from(samples()))
    raw = bytearray(encode_message(message))  # type: ignore[arg-type]
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_message(bytes(raw))
    except DecodeError:
        return
    assert encode_message(decoded) == bytes(raw)  # whatever decodes is canonical
