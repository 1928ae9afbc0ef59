"""Signature and certificate checks agree with types/block.py and refuse every forgery.

The audit of issue 9: every field of a vote, timeout, QC and TC that a receiver
uses is covered by a signature, so a copy of an honest message with any one
field changed is refused (the field-by-field tests below walk the dataclass
fields, so a field added later without a signature fails them).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import verify
from p2pcity.types.block import QuorumCert, VoteSignature
from p2pcity.types.consensus import TimeoutSignature
from tests.sim.builders import (
    CHAIN,
    genesis,
    genesis_qc,
    keys,
    make_chain,
    publics,
    qc_for,
    rebuild,
    tc_for,
    timeout,
    tx_pool,
    vote,
)

K = keys(4)
OUTSIDER = keys(5, seed=9)[0]


def verifier() -> Verifier:
    return Verifier(CHAIN, ValidatorSet(publics(K)), genesis().id, verify)


def test_qc_rules_match_quorum_cert_verify() -> None:
    _, b1, b2 = make_chain([1, 2], K)
    good = qc_for(b2, K[:3])
    v = verifier()
    cases = {
        "good": good,
        "all four": qc_for(b2, K),
        "genesis": genesis_qc(),
        "too few": qc_for(b2, K[:2]),
        "outsider": qc_for(b2, [*K[:2], OUTSIDER]),
        "duplicate signer": replace(good, votes=(good.votes[0], *good.votes[:2])),
        "bad signature": replace(
            good, votes=(replace(good.votes[0], signature=bytes(64)), *good.votes[1:])
        ),
        "wrong view": replace(good, view=3),
        "wrong height": replace(good, height=7),
        "wrong epoch": replace(good, epoch=1),
        "a voter's time changed": replace(
            good, votes=(replace(good.votes[0], timestamp_ms=5), *good.votes[1:])
        ),
        "view 0 for another block": QuorumCert.genesis(b1.id),
        "genesis QC of another epoch": replace(genesis_qc(), epoch=1),
    }
    for name, qc in cases.items():
        expected = qc.verify(CHAIN, publics(K), genesis().id)
        assert v.qc(qc) == expected, name
        assert v.qc(qc) == expected, name  # and again, from the cache
    assert v.qc(good) and not v.qc(cases["too few"])


def test_blocks_votes_and_timeouts_need_the_right_signer() -> None:
    b2 = make_chain([1, 2], K)[2]
    v = verifier()
    assert v.block(b2) is None
    assert b2.header.proposer != K[0].public_key
    # Whether it is the right leader depends on the parent (the core checks it: test_reputation).
    assert v.block(rebuild(b2, OUTSIDER, proposer=OUTSIDER.public_key)) == "not a validator"
    assert v.block(rebuild(b2, K[2], chain_id="other-city")) == "wrong chain"
    assert v.block(replace(b2, txs=b2.txs + b2.txs[:0] + (tx_pool()[0],))) == (
        "body does not match header"
    )
    forged = replace(b2, signature=bytes(64))
    assert v.block(forged) == "invalid block signature"
    assert v.vote(vote(K[1], b2))
    assert not v.vote(vote(OUTSIDER, b2))
    assert v.timeout(timeout(K[1], 3, b2.justify))
    assert not v.timeout(timeout(OUTSIDER, 3, b2.justify))
    # An honest node's high QC is always from an earlier view than the one it gives up on.
    assert not v.timeout(timeout(K[1], 1, b2.justify))


def test_tc_rules() -> None:
    _, b1, b2 = make_chain([1, 2], K)
    v = verifier()
    good = tc_for(4, K[:3], b2.justify)
    assert v.tc(good) and v.tc(good)
    assert not v.tc(tc_for(4, K[:2], b2.justify))
    assert not v.tc(tc_for(4, [*K[:2], OUTSIDER], b2.justify))
    assert not v.tc(replace(good, view=5))  # signatures are for view 4
    assert not v.tc(replace(good, high_qc=b1.justify))  # not the highest reported
    assert not v.tc(replace(good, signatures=(good.signatures[0],) * 3))


def _changed(value: Any) -> Any:
    """A different value of the same type (the forger's edit of one field)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    raise TypeError(type(value))


def test_a_vote_with_any_field_forged_is_refused() -> None:
    b2 = make_chain([1, 2], K)[2]
    v = verifier()
    honest = vote(K[1], b2)
    assert v.vote(honest)
    for f in fields(honest):
        if f.name in ("signer", "signature"):
            continue  # another key, or another signature: a different (invalid) vote anyway
        forged = replace(honest, **{f.name: _changed(getattr(honest, f.name))})
        assert not v.vote(forged), f"a vote's {f.name} is not covered by its signature"


def test_a_timeout_with_any_field_forged_is_refused() -> None:
    _, b1, b2 = make_chain([1, 2], K)
    v = verifier()
    honest = timeout(K[1], 3, b2.justify)
    assert v.timeout(honest)
    for f in fields(honest):
        if f.name in ("signer", "signature"):
            continue
        value = getattr(honest, f.name)
        # The high QC is replaced by another valid one (of b1): its view is what is signed.
        forged = replace(
            honest, **{f.name: b1.justify if f.name == "high_qc" else _changed(value)}
        )
        assert not v.timeout(forged), f"a timeout's {f.name} is not covered by its signature"


def test_a_qc_or_tc_with_any_field_forged_is_refused() -> None:
    _, b1, b2 = make_chain([1, 2], K)
    v = verifier()
    qc = qc_for(b2, K[:3])
    assert v.qc(qc)
    for f in fields(qc):
        if f.name == "votes":
            continue
        forged = replace(qc, **{f.name: _changed(getattr(qc, f.name))})
        assert not v.qc(forged), f"a QC's {f.name} is not covered by its votes"
    for f in fields(VoteSignature):
        if f.name == "signer":
            continue
        part = replace(qc.votes[0], **{f.name: _changed(getattr(qc.votes[0], f.name))})
        assert not v.qc(replace(qc, votes=(part, *qc.votes[1:]))), f"a QC vote's {f.name}"
    tc = tc_for(4, K[:3], b2.justify)
    assert v.tc(tc)
    for f in fields(tc):
        if f.name == "signatures":
            continue
        value = b1.justify if f.name == "high_qc" else _changed(getattr(tc, f.name))
        assert not v.tc(replace(tc, **{f.name: value})), f"a TC's {f.name}"
    for f in fields(TimeoutSignature):
        if f.name == "signer":
            continue
        part = replace(tc.signatures[0], **{f.name: _changed(getattr(tc.signatures[0], f.name))})
        assert not v.tc(replace(tc, signatures=(part, *tc.signatures[1:]))), f"a TC part's {f.name}"


def test_a_block_of_another_epoch_is_refused() -> None:
    b2 = make_chain([1, 2], K)[2]
    assert verifier().block(rebuild(b2, K[2], epoch=1)) == "wrong epoch"
