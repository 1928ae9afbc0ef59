"""Light-client tests across a validator-set change, collected by two modules.

Each module that imports these tests gives them its own ``world`` fixture, a real
node process that crossed one epoch with the operator's ``p2pcity district`` commands:

- ``tests/node/test_light_client.py`` (CI): the solo node adds an observer
  district; the set version, so the epoch, moves to 1 while the set stays {A};
- ``tests/node/test_light_epochs.py`` (soak: ``.venv/bin/python -m pytest -m soak
  tests/node/test_light_epochs.py``, about a minute): the genesis names A only, and
  B (running from the start) is added, so epoch 1 is signed by {A, B} (a quorum is
  both) and epoch 0's set {A} is retired. The retired-set lies need this world.

A light client trusting only the genesis reads a record written in epoch 1: it
follows the hand-over (``GET /epochs``), checked against the set before it. Each
lie is a rewrite of the node's real answer by ``LyingProxy``; forged certificates
are signed with A's real key (read from its home), i.e. by the retired set
itself. Each is caught with one line; the controls plant each check out and show
the same lie believed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from p2pcity import client_trust
from p2pcity.chain.genesis import Genesis
from p2pcity.cli import cli
from p2pcity.client import Client
from p2pcity.client_light import LightClient, Trust, VerificationError
from p2pcity.codec import decode, encode
from p2pcity.consensus import epochs
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import Identity
from p2pcity.types.block import BlockHeader, QuorumCert, VoteSignature
from p2pcity.types.epoch import EpochEnd

from .lying_proxy import LyingProxy

CHAIN = "light-epochs"
NAME = "epoch1/deed"


def observer_card(tmp: Path) -> Path:
    """The card of a new district (a bank, to add as an observer)."""
    bank = tmp / "bank"
    done = CliRunner().invoke(cli, ["init", "--home", str(bank), "--district", "bank"])
    assert done.exit_code == 0, done.output
    return bank / "district.json"


@dataclasses.dataclass
class World:
    kind: str
    url: str
    genesis: Genesis
    retired: Identity  # A: the whole validator set of epoch 0


def cross_an_epoch(url: str, home: Path, card: Path, tmp: Path, *role: str) -> None:
    """Add the district of ``card`` with the CLI (in-process: each process start costs seconds
    under load), approved and submitted by the validator of ``home``."""
    change, key = tmp / "change.json", str(home / "keys" / "identity.json")
    for step in (
        ["propose", "--card", str(card), *role, "--node", url, "--out", str(change)],
        ["approve", str(change), "--key", key],
        ["submit", str(change), "--key", key, "--node", url, "--timeout", "180"],
    ):
        done = CliRunner().invoke(cli, ["district", *step])
        assert done.exit_code == 0, done.output
    with Client(url) as client:
        client.put_record(Identity.generate(), NAME, b"deed v2", wait=True)


def _read(url: str, trust: Trust) -> LightClient:
    light = LightClient(url, trust)
    with light:
        assert light.record(NAME) is not None
    return light


def _size(world: World) -> int:
    """The number of validators of epoch 1."""
    return 1 if world.kind == "solo" else 2


def test_the_light_client_follows_the_hand_over_from_the_genesis(world: World) -> None:
    light = _read(world.url, Trust.from_genesis(world.genesis))
    assert light.trust.epoch == 1 and len(light.trust.validators) == _size(world)
    assert light.last is not None and light.last.header.epoch == 1


def test_it_starts_from_a_waypoint_and_from_a_saved_trust_file(world: World, tmp_path: Path) -> None:
    followed = _read(world.url, Trust.from_genesis(world.genesis)).trust
    waypoint = f"{followed.start_height}:{followed.start_id.hex()}:1"
    with LightClient.from_waypoint(world.url, waypoint) as light:
        assert light.record(NAME) is not None
        assert light.trust.validators == followed.validators
    genesis_waypoint = f"0:{world.genesis.block().id.hex()}:0"
    with LightClient.from_waypoint(world.url, genesis_waypoint) as light:
        assert light.record(NAME) is not None and light.trust.epoch == 1
    followed.save(tmp_path / "trust.json")
    assert client_trust.load(tmp_path / "trust.json") == followed


# --- the lies -----------------------------------------------------------------------


def _vote(who: Identity, qc: QuorumCert) -> QuorumCert:
    """``qc`` signed by ``who`` alone (the retired set's one validator)."""
    unsigned = VoteSignature(who.public.signing_key, 1, bytes(64))
    vote = VoteSignature(unsigned.signer, 1, who.signer.sign(qc.vote_bytes(CHAIN, unsigned)))
    return dataclasses.replace(qc, votes=(vote,))


def _on_ends(change: Callable[[EpochEnd], EpochEnd]) -> Callable[[Any], Any]:
    def lie(answer: Any) -> Any:
        for item in answer["ends"]:
            item["end"] = encode(change(EpochEnd.decode(bytes.fromhex(item["end"])))).hex()
        return answer

    return lie


def _zeroed_signatures(end: EpochEnd) -> EpochEnd:
    votes = tuple(dataclasses.replace(v, signature=bytes(64)) for v in end.qc.votes)
    return dataclasses.replace(end, qc=dataclasses.replace(end.qc, votes=votes))


def _skipped(end: EpochEnd) -> EpochEnd:
    return dataclasses.replace(end, next_epoch=2)


def _other_set(end: EpochEnd) -> EpochEnd:
    return dataclasses.replace(end, next_validators=(Identity.generate().public.signing_key,))


def _withheld(answer: Any) -> Any:
    return {**answer, "ends": []}


def _retired_hand_over(world: World) -> Callable[[Any], Any]:
    """A hand-over from epoch 1 to an epoch 2 of A alone, every certificate signed by A (the
    retired set of epoch 0, still a member of epoch 1's set, not a quorum of it)."""

    def lie(answer: Any) -> Any:
        base = decode(BlockHeader, bytes.fromhex(answer["start"]["header"]))

        def child(parent: BlockHeader) -> BlockHeader:
            justify = _vote(world.retired, QuorumCert(1, parent.view, parent.id, parent.height, ()))
            return dataclasses.replace(
                parent, height=parent.height + 1, view=parent.view + 1, parent_id=parent.id, justify=justify
            )

        h0 = dataclasses.replace(base, epoch=1, height=base.height + 1, view=5)
        h1 = child(h0)
        h2 = child(h1)
        qc = _vote(world.retired, QuorumCert(1, h2.view, h2.id, h2.height, ()))
        end = EpochEnd(1, h0, (h1, h2), qc, 2, (world.retired.public.signing_key,))
        # The set proof of the start block: h0 copies its state root, so it holds up.
        return {**answer, "ends": [{"end": encode(end).hex(), "validators": answer["start"]["validators"]}]}

    return lie


Change = Callable[[BlockHeader, QuorumCert], tuple[BlockHeader, QuorumCert]]


def _envelope(change: Change) -> Callable[[Any], Any]:
    def lie(env: Any) -> Any:
        header = decode(BlockHeader, bytes.fromhex(env["header"]))
        qc = decode(QuorumCert, bytes.fromhex(env["qc"]))
        header, qc = change(header, qc)
        return {**env, "header": encode(header).hex(), "qc": encode(qc).hex()}

    return lie


@dataclasses.dataclass(frozen=True)
class Lie:
    rewrites: dict[str, Callable[[Any], Any]]
    message: str
    epoch1: bool = False  # the client starts trusting epoch 1 (else the genesis)
    retired: bool = False  # needs a retired set: only the pair world has one


def _needs(world: World, lie: Lie) -> None:
    if lie.retired and world.kind == "solo":
        pytest.skip("the solo world's set did not change: A alone is a quorum of epoch 1 too")


def lies(world: World) -> dict[str, Lie]:
    retired_qc = _envelope(lambda h, qc: (h, _vote(world.retired, qc)))
    old_epoch_qc = _envelope(lambda h, qc: (h, _vote(world.retired, dataclasses.replace(qc, epoch=0))))
    epoch2 = _envelope(lambda h, qc: (dataclasses.replace(h, epoch=2), qc))
    return {
        "forged epoch proof": Lie({"/epochs": _on_ends(_zeroed_signatures)}, "a certificate is not a quorum"),
        "hand-over signed by the retired set": Lie(
            {"/epochs": _retired_hand_over(world), "/records/": epoch2},
            "epoch 1: a certificate is not a quorum of the epoch's validators",
            epoch1=True,
            retired=True,
        ),
        "skipped epoch (renumbered)": Lie({"/epochs": _on_ends(_skipped)}, "names epoch 2"),
        "skipped epoch (withheld)": Lie({"/epochs": _withheld}, "a skipped epoch"),
        "hand-over to another set": Lie({"/epochs": _on_ends(_other_set)}, "holds set version 1 of"),
        "QC of the retired set for a later header": Lie(
            {"/records/": retired_qc}, "not signed by a quorum of the validators of epoch 1", retired=True
        ),
        "QC of the retired epoch for a later header": Lie(
            {"/records/": old_epoch_qc}, "the QC is of epoch 0"
        ),
    }


LIE_NAMES = [
    "forged epoch proof",
    "hand-over signed by the retired set",
    "skipped epoch (renumbered)",
    "skipped epoch (withheld)",
    "hand-over to another set",
    "QC of the retired set for a later header",
    "QC of the retired epoch for a later header",
]


def _trust(world: World, lie: Lie) -> Trust:
    if not lie.epoch1:
        return Trust.from_genesis(world.genesis)
    trust = _read(world.url, Trust.from_genesis(world.genesis)).trust
    trust.verified_height = 0
    return trust


@pytest.mark.parametrize("name", LIE_NAMES)
def test_each_lie_is_caught_in_one_line(world: World, name: str) -> None:
    lie = lies(world)[name]
    _needs(world, lie)
    with (
        LyingProxy(world.url, lie.rewrites) as liar,
        LightClient(liar, _trust(world, lie)) as light,
        pytest.raises(VerificationError, match=lie.message) as caught,
    ):
        light.record(NAME)
    assert "\n" not in str(caught.value)


def test_a_waypoint_of_another_chain_is_refused(world: World) -> None:
    stranger = f"0:{bytes(range(32)).hex()}:0"
    with pytest.raises(VerificationError, match="does not pass through the waypoint"):
        LightClient.from_waypoint(world.url, stranger)


def _believe_any_hand_over(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(epochs, "epoch_end_problem", lambda *_: None)


def _believe_the_claimed_set(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(client_trust, "hand_over_problem", lambda *_: None)


def _believe_both(mp: pytest.MonkeyPatch) -> None:
    _believe_any_hand_over(mp)
    _believe_the_claimed_set(mp)


# name -> (the check planted out, the epoch the lie moves the trust to, the size of that set:
# None for the real one of epoch 1)
CONTROLS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], int, int | None]] = {
    "forged epoch proof": (_believe_any_hand_over, 1, None),
    "hand-over signed by the retired set": (_believe_both, 2, 1),
    "skipped epoch (renumbered)": (_believe_the_claimed_set, 2, None),
    "hand-over to another set": (_believe_the_claimed_set, 1, 1),
}


@pytest.mark.parametrize("name", list(CONTROLS))
def test_control_with_the_check_planted_out_the_false_hand_over_is_believed(
    world: World, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lie = lies(world)[name]
    _needs(world, lie)
    trust = _trust(world, lie)
    plant, epoch, size = CONTROLS[name]
    plant(monkeypatch)
    with LyingProxy(world.url, lie.rewrites) as liar, LightClient(liar, trust) as light:
        light.follow_epochs(epoch)
        assert light.trust.epoch == epoch and len(light.trust.validators) == (size or _size(world))


def test_control_with_the_qc_check_planted_out_the_retired_sets_qc_is_believed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lie = lies(world)["QC of the retired set for a later header"]
    _needs(world, lie)
    monkeypatch.setattr(Verifier, "qc", lambda *_: True)
    with LyingProxy(world.url, lie.rewrites) as liar, LightClient(liar, _trust(world, lie)) as light:
        assert light.record(NAME) is not None


def test_control_with_the_waypoint_check_planted_out_another_chain_is_trusted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_trust, "passes_through", lambda *_: True)
    with LightClient.from_waypoint(world.url, f"0:{bytes(range(32)).hex()}:0") as light:
        assert light.record(NAME) is not None
