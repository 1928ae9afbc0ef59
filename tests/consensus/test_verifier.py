"""Signature and certificate checks agree with types/block.py and refuse every forgery."""

from __future__ import annotations

from dataclasses import replace

from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import verify
from p2pcity.types.block import QuorumCert, VoteSignature
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
            good, votes=(VoteSignature(good.votes[0].signer, bytes(64)), *good.votes[1:])
        ),
        "wrong view": replace(good, view=3),
        "view 0 for another block": QuorumCert(0, b1.id, 0, ()),
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
    assert v.block(rebuild(b2, K[0], proposer=K[0].public_key)) == "wrong leader"
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
