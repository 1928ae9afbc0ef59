"""The replica set: a pure function of the dataset id and the validators, never below f+1."""

from __future__ import annotations

import os

from p2pcity.sharing.replication import replica_set

VALIDATORS = [os.urandom(32) for _ in range(7)]  # n = 7, f = 2


def test_all_by_default_and_the_same_on_every_node() -> None:
    dataset = os.urandom(32)
    assert sorted(replica_set(dataset, VALIDATORS)) == sorted(VALIDATORS)
    assert replica_set(dataset, VALIDATORS, 3) == replica_set(dataset, list(reversed(VALIDATORS)), 3)


def test_a_factor_never_goes_below_f_plus_one_and_spreads_over_validators() -> None:
    assert len(replica_set(os.urandom(32), VALIDATORS, 1)) == 3  # f + 1
    chosen = {v for _ in range(200) for v in replica_set(os.urandom(32), VALIDATORS, 3)}
    assert chosen == set(VALIDATORS)  # no validator is left out of every set
