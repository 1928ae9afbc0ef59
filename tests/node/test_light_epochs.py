"""The light-client epoch tests (``tests/node/light_epochs.py``) where the set really changed.

Soak-marked (about a minute on a loaded machine: two node processes and a hand-over
to a new validator), run with:

    .venv/bin/python -m pytest -m soak tests/node/test_light_epochs.py

The genesis names A only; B, running from the start, is added with ``p2pcity
district``: epoch 1 is signed by {A, B}, and epoch 0's set {A} is retired, so the
retired-set lies (a hand-over and a QC signed by A alone) are real here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pcity.crypto.keys import Identity
from p2pcity.home import DistrictCard, new_genesis
from p2pcity.testnet import Testnet
from tests.processes import FAST

from .light_epochs import (  # noqa: F401 - collected here with this module's world
    CHAIN,
    World,
    cross_an_epoch,
    test_a_waypoint_of_another_chain_is_refused,
    test_control_with_the_check_planted_out_the_false_hand_over_is_believed,
    test_control_with_the_qc_check_planted_out_the_retired_sets_qc_is_believed,
    test_control_with_the_waypoint_check_planted_out_another_chain_is_trusted,
    test_each_lie_is_caught_in_one_line,
    test_it_starts_from_a_waypoint_and_from_a_saved_trust_file,
    test_the_light_client_follows_the_hand_over_from_the_genesis,
)

pytestmark = [pytest.mark.slow, pytest.mark.soak]


def _card(home: Path) -> DistrictCard:
    raw = json.loads((home / "district.json").read_text())
    return DistrictCard(**{**raw, "addrs": tuple(raw.get("addrs", ()))})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("light-pair")
    net = Testnet.create(tmp / "net", 2, chain_id=CHAIN, config_overrides=FAST)
    genesis = new_genesis(CHAIN, [_card(net.nodes[0].home)])
    for node in net.nodes:
        genesis.save(node.home / "genesis.json")
    genesis.save(net.dir / "genesis.json")
    net.start(timeout=180)
    try:
        net.wait_for_height(2, timeout=180, nodes=[0])
        a = net.nodes[0]
        cross_an_epoch(a.api, a.home, net.nodes[1].home / "district.json", tmp)
        yield World("pair", a.api, genesis, Identity.load(a.home / "keys" / "identity.json"))
    finally:
        net.down()
