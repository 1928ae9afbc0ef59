"""Change files (``p2pcity.changes``) against the real ledger, and the offline CLI steps.

The online steps (propose against a node, submit and wait for the epoch) run
on a real testnet in ``tests/node/test_epochs_testnet.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2pcity.chain import queries
from p2pcity.changes import ChangeError, ChangeFile, approve, propose, transactions
from p2pcity.crypto.keys import Identity
from tests.cli.conftest import CliRun
from tests.factories import CHAIN, ChainBuilder, genesis_for, identities

VALIDATORS = identities(4, seed=31)
NEWCOMER = identities(1, seed=32)[0]
GENESIS = genesis_for(VALIDATORS)


def current(chain: ChainBuilder) -> dict[str, Any]:
    """What ``GET /validators`` answers, from the builder's state."""
    vset = queries.validator_set(chain.state)
    return {
        "version": vset.version,
        "validators": [v.hex() for v in vset.validators],
        "districts": [
            {
                "name": e.district.name,
                "account": e.district.account.hex(),
                "pre_key": e.district.pre_key.hex(),
                "peer_id": e.district.peer_id,
                "role": e.district.role,
                "since_height": e.since_height,
            }
            for e in queries.districts(chain.state)
        ],
    }


def card(who: Identity, name: str, peer: str = "peer-new") -> dict[str, Any]:
    return {
        "name": name,
        "account": who.signer.public_key.hex(),
        "pre_key": who.public.pre_key.hex(),
        "peer_id": peer,
        "role": "validator",
        "addrs": [],
    }


def commit(chain: ChainBuilder, change_file: ChangeFile, nonce: int = 1) -> list[bool]:
    _, result = chain.next_block(transactions(change_file, VALIDATORS[0], nonce))
    return [r.ok for r in result.receipts]


def signed_by(change_file: ChangeFile, approvers: list[Identity]) -> ChangeFile:
    for who in approvers:
        change_file = approve(change_file, who)
    return change_file


def test_add_then_remove_through_change_files() -> None:
    chain = ChainBuilder(VALIDATORS, GENESIS)
    added = propose(CHAIN, current(chain), card=card(NEWCOMER, "hospital"))
    assert [c.action for c in added.changes] == ["add"]
    assert commit(chain, signed_by(added, VALIDATORS[:3])) == [True]
    vset = queries.validator_set(chain.state)
    assert vset.version == 1 and NEWCOMER.signer.public_key in vset.validators
    removed = propose(CHAIN, current(chain), remove="district-2")
    assert commit(chain, signed_by(removed, [*VALIDATORS[:2], NEWCOMER, VALIDATORS[3]]), 2) == [True]
    assert VALIDATORS[2].signer.public_key not in queries.validator_set(chain.state).validators
    assert [e.epoch for e in queries.epochs(chain.state)] == [0, 1, 2]


def test_too_few_approvals_are_refused_by_the_ledger() -> None:
    chain = ChainBuilder(VALIDATORS, GENESIS)
    added = propose(CHAIN, current(chain), card=card(NEWCOMER, "hospital"))
    assert signed_by(added, VALIDATORS[:2]).approvers() == [v.signer.public_key for v in VALIDATORS[:2]]
    assert commit(chain, signed_by(added, VALIDATORS[:2])) == [False]


def test_rotating_a_validators_account_is_a_removal_and_an_addition_approved_together() -> None:
    chain = ChainBuilder(VALIDATORS, GENESIS)
    rotated = propose(CHAIN, current(chain), card=card(NEWCOMER, "ignored"), rotate="district-1")
    assert [(c.action, c.set_version, c.district.name) for c in rotated.changes] == [
        ("remove", 0, "district-1"),
        ("add", 1, "district-1"),
    ]
    # The second change is approved by the set after the first: the others are a quorum of it.
    assert commit(chain, signed_by(rotated, [VALIDATORS[0], VALIDATORS[2], VALIDATORS[3]])) == [True, True]
    keys = queries.validator_set(chain.state).validators
    assert NEWCOMER.signer.public_key in keys and VALIDATORS[1].signer.public_key not in keys


def test_the_same_account_with_new_keys_is_an_update() -> None:
    chain = ChainBuilder(VALIDATORS, GENESIS)
    who = VALIDATORS[1]
    rotated = propose(CHAIN, current(chain), card=card(who, "x", peer="peer-moved"), rotate="district-1")
    assert [c.action for c in rotated.changes] == ["update"]
    assert commit(chain, signed_by(rotated, VALIDATORS[:3])) == [True]
    entry = next(e for e in queries.districts(chain.state) if e.district.name == "district-1")
    assert entry.district.peer_id == "peer-moved"


def test_a_change_edited_after_approval_carries_no_valid_approval(tmp_path: Path) -> None:
    chain = ChainBuilder(VALIDATORS, GENESIS)
    path = tmp_path / "change.json"
    signed_by(propose(CHAIN, current(chain), card=card(NEWCOMER, "hospital")), VALIDATORS[:3]).save(path)
    raw = json.loads(path.read_text())
    raw["changes"][0]["district"]["role"] = "observer"
    path.write_text(json.dumps(raw))
    tampered = ChangeFile.load(path)
    assert tampered.approvers() == []
    assert commit(chain, tampered) == [False]


def test_a_change_file_is_read_with_the_genesis_checks_of_a_district(tmp_path: Path) -> None:
    """One mapping of a district to JSON (``chain.genesis``): a round trip is exact, and a
    truncated account is refused when the file is read, not deep in the ledger."""
    chain = ChainBuilder(VALIDATORS, GENESIS)
    change_file = propose(CHAIN, current(chain), card=card(NEWCOMER, "hospital"))
    assert ChangeFile.from_json(change_file.to_json()) == change_file
    raw = change_file.to_json()
    raw["changes"][0]["district"]["account"] = raw["changes"][0]["district"]["account"][:-2]
    with pytest.raises(ChangeError, match="account must be 32 bytes"):
        ChangeFile.from_json(raw)


def test_proposals_that_cannot_be() -> None:
    chain = ChainBuilder(VALIDATORS, GENESIS)
    with pytest.raises(ChangeError, match="no district named"):
        propose(CHAIN, current(chain), remove="nobody")
    with pytest.raises(ChangeError, match="is taken"):
        propose(CHAIN, current(chain), card=card(NEWCOMER, "district-0"))
    with pytest.raises(ChangeError, match="give --card"):
        propose(CHAIN, current(chain))


def test_cli_approve_is_offline_and_says_what_it_did(p2pcity: CliRun, tmp_path: Path) -> None:
    chain = ChainBuilder(VALIDATORS, GENESIS)
    path = tmp_path / "change.json"
    propose(CHAIN, current(chain), card=card(NEWCOMER, "hospital")).save(path)
    key = tmp_path / "identity.json"
    VALIDATORS[0].save(key)
    result = p2pcity("district", "approve", str(path), "--key", str(key))
    assert result.returncode == 0, result.stderr
    assert "1 approval(s)" in result.stdout
    assert ChangeFile.load(path).approvers() == [VALIDATORS[0].signer.public_key]
    (tmp_path / "bad.json").write_text("{}")
    bad = p2pcity("district", "approve", str(tmp_path / "bad.json"), "--key", str(key))
    assert bad.returncode == 1 and bad.stderr.startswith("error: not a change file")
