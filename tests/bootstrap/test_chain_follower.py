"""The bootstrap node follows committed district changes by itself (issue 11).

The rule (:func:`bootstrap.admission.agreed`) in isolation, then the real
bootstrap program, with no ``--follow``, among in-process libp2p hosts that
play the genesis validators and answer the ``districts`` request: one lying
validator cannot get a stranger admitted; f+1 agreeing ones can.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from bootstrap.admission import agreed, members_of
from p2pcity.codec import encode
from p2pcity.net import Network
from p2pcity.node.membership import MEMBERSHIP_PROTOCOL, Member, Membership, genesis_membership
from tests.factories import identities
from tests.net.conftest import PSK, Keys, wait_for

from .conftest import CHAIN, READY, BootProcess, make_home, start_process, write_genesis

A, B, C, D, E, NEW = (f"12D3KooW{c * 44}" for c in "ABCDEF")


def genesis_set(tmp_path: Path, peers: list[str]) -> Membership:
    return genesis_membership(write_genesis(tmp_path / "g.json", peers))


def with_newcomer(trusted: Membership, peer: str = NEW) -> Membership:
    account = identities(1, seed=99)[0].signer.public_key
    member = Member(account, peer, "newcomer", "validator")
    return Membership(
        trusted.version + 1,
        tuple(sorted((*trusted.validators, account))),
        tuple(sorted((*trusted.districts, member), key=lambda m: m.account)),
    )


def test_f_plus_one_validators_agreeing_move_the_trusted_set(tmp_path: Path) -> None:
    trusted = genesis_set(tmp_path, [A, B, C, D, E])  # A..D validators (f = 1), E an observer
    changed = with_newcomer(trusted)
    assert agreed(trusted, {A: changed, B: changed, C: trusted, D: trusted}) == changed
    assert NEW in members_of(changed) and NEW not in members_of(trusted)
    # The newest backed answer wins; a node behind does not hold the others back.
    assert agreed(trusted, {A: changed, B: changed, C: changed, D: trusted}) == changed


def test_one_liar_or_non_validators_cannot_change_the_set(tmp_path: Path) -> None:
    trusted = genesis_set(tmp_path, [A, B, C, D, E])
    lie = with_newcomer(trusted)
    assert agreed(trusted, {A: lie, B: trusted, C: trusted}) == trusted
    assert agreed(trusted, {A: lie}) is None
    # The observer and strangers are not asked to vouch: they do not count.
    assert agreed(trusted, {A: lie, E: lie, NEW: lie, "12D3KooWzz": lie}) is None
    # An older answer than the trusted set is ignored, however many give it.
    older = dataclasses.replace(trusted, version=0)
    newer = dataclasses.replace(lie, version=5)
    assert agreed(newer, {A: older, B: older, C: older}) is None


# --- the real program -----------------------------------------------------


async def _host(
    nursery: trio.Nursery, keys: Keys, index: int, answer: Callable[[], Membership], boot: str
) -> Network:
    config = keys.config(index, chain_id=CHAIN, bootstrap=[boot], rendezvous=True)
    net = Network(config)

    async def handle(_peer: str, _data: bytes) -> bytes:
        return encode(answer())

    net.set_handler(MEMBERSHIP_PROTOCOL, handle)
    await nursery.start(net.run)
    return net


@pytest.mark.slow
async def test_the_bootstrap_program_admits_a_district_when_f_plus_one_validators_say_so(
    nursery: trio.Nursery, tmp_path: Path, processes: list[BootProcess]
) -> None:
    keys = Keys(tmp_path / "hosts")
    keys.make(6)  # 0-3 genesis validators, 4 a genesis observer, 5 the newcomer
    boot = make_home(tmp_path, psk=PSK)
    genesis = write_genesis(boot.home / "genesis.json", keys.ids[:5], (boot.addr,))
    boot.configure(follow_interval=1.0)  # follow stays "auto": nothing else to configure
    process = start_process(processes, boot)
    await process.wait_for_line(READY)
    trusted = genesis_membership(genesis)
    changed = with_newcomer(trusted, keys.ids[5])
    says = {i: trusted for i in range(4)}
    for i in range(4):
        await _host(nursery, keys, i, lambda i=i: says[i], boot.addr)  # type: ignore[misc]
    await process.wait_for_line("status: 4/5 admitted peers connected")

    newcomer = await _host(nursery, keys, 5, lambda: changed, boot.addr)
    says[0] = changed  # one lying validator
    await process.wait_for_line(f"refused inbound connection from {newcomer.peer_id}")
    mark = len(process.output())
    await process.wait_for_line("status:", after=mark)
    await trio.sleep(3.0)  # three follow rounds
    assert "admission changed" not in process.output()
    assert boot.peer_id not in newcomer.connected_peers()

    says[1] = changed  # f+1 = 2 validators: committed, as far as the bootstrap can tell
    await process.wait_for_line("admission changed", timeout=30)
    await wait_for(lambda: boot.peer_id in newcomer.connected_peers(), timeout=30, what="newcomer admitted")
    assert "follow: the validators agree on set 1 (was 0)" in process.output()
    assert process.stop() == 0
    assert "Traceback" not in process.output()
