"""The light client against a real node, honest and behind a lying proxy.

One solo node process (its one validator signs each QC) that crossed one epoch (an
observer district added), so every read follows an epoch-change proof first; the
epoch tests of ``light_epochs.py`` run here on it too. Each lie is a rewrite of the
node's real ``?proof=true`` answer by ``LyingProxy``; each must end in a
``VerificationError`` naming what is wrong, while the same read straight from the node
verifies. The stale-answer lie replays a real, older, correctly signed answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from p2pcity.chain import proof
from p2pcity.chain.entries import DistrictEntry, RecordEntry
from p2pcity.chain.genesis import Genesis
from p2pcity.cli import cli
from p2pcity.client import Client
from p2pcity.client_light import LightClient, Trust, VerificationError
from p2pcity.codec import decode, encode
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import Identity
from p2pcity.types.block import BlockHeader, QuorumCert, VoteSignature
from tests import processes

from .light_epochs import (  # noqa: F401 - the epoch tests, collected here with the solo world
    World,
    cross_an_epoch,
    observer_card,
    test_a_waypoint_of_another_chain_is_refused,
    test_control_with_the_check_planted_out_the_false_hand_over_is_believed,
    test_control_with_the_qc_check_planted_out_the_retired_sets_qc_is_believed,
    test_control_with_the_waypoint_check_planted_out_another_chain_is_trusted,
    test_each_lie_is_caught_in_one_line,
    test_it_starts_from_a_waypoint_and_from_a_saved_trust_file,
    test_the_light_client_follows_the_hand_over_from_the_genesis,
)
from .lying_proxy import LyingProxy

pytestmark = pytest.mark.slow
NAME = "land/parcel-7"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One solo node that crossed an epoch: a record in epoch 0, an observer added (epoch 1,
    same set), a record in epoch 1. Every read below follows the hand-over first."""
    tmp = tmp_path_factory.mktemp("light")
    for running in processes.solo_node(tmp):
        with Client(running.url) as client:
            client.put_record(Identity.generate(), NAME, b"deed v1", wait=True)
        cross_an_epoch(running.url, running.home, observer_card(tmp), tmp, "--role", "observer")
        identity = Identity.load(running.home / "keys" / "identity.json")
        yield World("solo", running.url, Genesis.load(running.home / "genesis.json"), identity)


@pytest.fixture(scope="module")
def node(world: World) -> tuple[str, Genesis]:
    return world.url, world.genesis


def trust(genesis: Genesis) -> Trust:
    return Trust.from_genesis(genesis)


def test_honest_reads_verify(node: tuple[str, Genesis]) -> None:
    url, genesis = node
    with LightClient(url, trust(genesis)) as light:
        entry = light.record(NAME)
        assert entry is not None and entry.digest == hashlib.sha256(b"deed v1").digest()
        assert light.record("land/none") is None  # proven absent
        vset, districts = light.validators()
        assert vset.validators == genesis.validators
        assert [d.district.pre_key for d in districts] == [
            d.pre_key for d in sorted(genesis.districts, key=lambda d: d.account) if d.role == "validator"
        ]
        assert light.nonce(entry.signer) == 1
        assert light.dataset(bytes(32)) is None
        assert light.grant(bytes(32)) is None
        assert light.district(genesis.validators[0]) is not None
        assert light.trust.verified_height >= entry.height


def _value(fn: Callable[[bytes], bytes]) -> Callable[[Any], Any]:
    def lie(env: Any) -> Any:
        entry = env["entries"][0]
        entry["value"] = fn(bytes.fromhex(entry["value"])).hex()
        return env

    return lie


def _record_digest(raw: bytes) -> bytes:
    entry = decode(RecordEntry, raw)
    return encode(dataclasses.replace(entry, digest=bytes(32)))


def _absent(env: Any) -> Any:
    env["entries"][0]["value"] = None
    return env


def _sibling(env: Any) -> Any:
    siblings = env["entries"][0]["siblings"]
    siblings[0] = "00" * 32 if siblings[0] != "00" * 32 else "11" * 32
    return env


def _header(change: Callable[[BlockHeader], BlockHeader]) -> Callable[[Any], Any]:
    def lie(env: Any) -> Any:
        header = decode(BlockHeader, bytes.fromhex(env["header"]))
        env["header"] = encode(change(header)).hex()
        return env

    return lie


def _qc(change: Callable[[QuorumCert], QuorumCert]) -> Callable[[Any], Any]:
    def lie(env: Any) -> Any:
        env["qc"] = encode(change(decode(QuorumCert, bytes.fromhex(env["qc"])))).hex()
        return env

    return lie


def _forge_votes(qc: QuorumCert) -> QuorumCert:
    votes = tuple(VoteSignature(v.signer, v.timestamp_ms, bytes(64)) for v in qc.votes)
    return QuorumCert(qc.epoch, qc.view, qc.block_id, qc.height, votes)


def _other_chain(h: BlockHeader) -> BlockHeader:
    return dataclasses.replace(h, chain_id="other-city")


def _other_root(h: BlockHeader) -> BlockHeader:
    return dataclasses.replace(h, state_root=bytes(32))


def _roots(env: Any) -> Any:
    env["tree_root"] = "22" * 32
    return env


LIES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "changed value": (_value(_record_digest), "value was altered"),
    "fabricated absence": (_absent, "absence is fabricated"),
    "changed sibling": (_sibling, "does not hash to the certified state root"),
    "forged QC": (_qc(_forge_votes), "not signed by a quorum"),
    "QC of another block": (_header(_other_root), "certifies another block"),
    "header from another chain": (_header(_other_chain), "of chain 'other-city'"),
    "roots not the header's": (_roots, "not the header's state root"),
}


@pytest.mark.parametrize("lie", list(LIES))
def test_a_lying_node_is_caught(node: tuple[str, Genesis], lie: str) -> None:
    url, genesis = node
    rewrite, message = LIES[lie]
    with (
        LyingProxy(url, {"/records/": rewrite}) as liar,
        LightClient(liar, trust(genesis)) as light,
        pytest.raises(VerificationError, match=message),
    ):
        light.record(NAME)


def test_control_without_the_proof_checks_the_lies_get_through(
    node: tuple[str, Genesis], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lies above are real: with the state-proof and QC checks planted out, they are believed."""
    url, genesis = node
    monkeypatch.setattr(proof, "verify", lambda *_: None)
    changed = {"/records/": LIES["changed value"][0]}
    with LyingProxy(url, changed) as liar, LightClient(liar, trust(genesis)) as light:
        entry = light.record(NAME)
        assert entry is not None and entry.digest == bytes(32)
    monkeypatch.setattr(Verifier, "qc", lambda *_: True)
    forged = {"/records/": LIES["forged QC"][0]}
    with LyingProxy(url, forged) as liar, LightClient(liar, trust(genesis)) as light:
        assert light.record(NAME) is not None


def test_a_lie_about_a_validators_pre_key_is_caught(node: tuple[str, Genesis]) -> None:
    url, genesis = node

    def swap_pre_key(env: Any) -> Any:
        entry = env["entries"][1]
        d = decode(DistrictEntry, bytes.fromhex(entry["value"]))
        forged = dataclasses.replace(d.district, pre_key=Identity.generate().public.pre_key)
        entry["value"] = encode(DistrictEntry(forged, d.since_height)).hex()
        return env

    with (
        LyingProxy(url, {"/validators": swap_pre_key}) as liar,
        LightClient(liar, trust(genesis)) as light,
        pytest.raises(VerificationError, match="value was altered"),
    ):
        light.validators()


def test_a_replayed_older_answer_is_caught_as_stale(node: tuple[str, Genesis]) -> None:
    url, genesis = node
    with Client(url) as client:
        old = client.get(f"/records/{NAME}", proof="true")
        client.wait_for_height(old["height"] + 1)
    light = LightClient(url, trust(genesis))
    with light:
        assert light.record(NAME) is not None  # verified at a later height
    with LyingProxy(url, {"/records/": lambda _: old}) as liar:
        light.node = Client(liar)
        with light, pytest.raises(VerificationError, match="stale answer"):
            light.record(NAME)


def test_a_genesis_of_another_chain_trusts_none_of_this_one(node: tuple[str, Genesis]) -> None:
    url, genesis = node
    stranger = Trust("other-city", genesis.block().id, genesis.validators)
    with LightClient(url, stranger) as light, pytest.raises(VerificationError, match="chain"):
        light.record(NAME)
    foreign = Trust(genesis.chain_id, genesis.block().id, (Identity.generate().public.signing_key,))
    with LightClient(url, foreign) as light, pytest.raises(VerificationError, match="quorum"):
        light.record(NAME)


# --- the CLI: record get --verify, verify record ------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pcity", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_record_get_verify_succeeds_on_the_node_and_fails_in_one_line_behind_a_liar(
    node: tuple[str, Genesis], tmp_path: Path
) -> None:
    url, genesis = node
    genesis_file = tmp_path / "genesis.json"
    genesis.save(genesis_file)
    verify = ["record", "get", NAME, "--verify", "--genesis", str(genesis_file)]
    honest = CliRunner().invoke(cli, [*verify, "--node", url])
    assert honest.exit_code == 0, honest.output
    assert hashlib.sha256(b"deed v1").hexdigest() in honest.stdout
    assert "verified at height" in honest.stdout
    def lie(answer: Any) -> Any:  # the plain view and the proof envelope alike
        if "entries" not in answer:
            return {**answer, "sha256": "00" * 32}
        return LIES["changed value"][0](answer)

    with LyingProxy(url, {"/records/": lie}) as liar:
        plain = CliRunner().invoke(cli, ["record", "get", NAME, "--node", liar])
        # The real process: exit status and stderr as a user sees them.
        lied = _cli(*verify, "--node", liar)
    assert plain.exit_code == 0 and "0" * 64 in plain.stdout  # without --verify the lie is printed
    assert lied.returncode != 0 and lied.stdout == ""
    assert lied.stderr.count("\n") == 1 and "value was altered" in lied.stderr


def test_verify_record_checks_a_document_for_a_third_party(node: tuple[str, Genesis], tmp_path: Path) -> None:
    url, genesis = node
    genesis_file = tmp_path / "genesis.json"
    genesis.save(genesis_file)
    deed, forged = tmp_path / "deed", tmp_path / "forged"
    deed.write_bytes(b"deed v1")
    forged.write_bytes(b"deed v0")
    base = ["verify", "record", NAME, "--genesis", str(genesis_file), "--node", url]
    ok = CliRunner().invoke(cli, [*base, "--file", str(deed)])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, [*base, "--file", str(forged)])
    assert bad.exit_code != 0 and "is not the latest version" in bad.stderr
    trusted = ["--genesis", str(genesis_file), "--node", url]
    absent = CliRunner().invoke(cli, ["verify", "record", "land/none", *trusted])
    assert absent.exit_code != 0 and "its absence is verified at height" in absent.stderr
    keys = CliRunner().invoke(cli, ["verify", "validators", *trusted])
    assert keys.exit_code == 0 and genesis.districts[0].pre_key.hex() in keys.output


def test_verify_from_a_waypoint_and_a_trust_file_that_keeps_freshness(
    node: tuple[str, Genesis], tmp_path: Path
) -> None:
    url, genesis = node
    genesis_file, trust_file = tmp_path / "genesis.json", tmp_path / "trust.json"
    genesis.save(genesis_file)
    waypoint = f"0:{genesis.block().id.hex()}:0"
    record = ["verify", "record", NAME, "--node"]
    by_waypoint = CliRunner().invoke(cli, [*record, url, "--waypoint", waypoint])
    assert by_waypoint.exit_code == 0, by_waypoint.output
    stranger = CliRunner().invoke(cli, [*record, url, "--waypoint", f"0:{'ab' * 32}:0"])
    assert stranger.exit_code != 0 and "does not pass through the waypoint" in stranger.stderr
    with Client(url) as client:
        old = client.get(f"/records/{NAME}", proof="true")
        client.wait_for_height(old["height"] + 1)
    first = [*record, url, "--genesis", str(genesis_file), "--trust", str(trust_file)]
    assert CliRunner().invoke(cli, first).exit_code == 0
    saved = json.loads(trust_file.read_text())
    assert saved["epoch"] == 1 and saved["verified_height"] > old["height"]
    # A later command trusts the file alone, and so refuses the older answer a liar replays.
    with LyingProxy(url, {"/records/": lambda _: old}) as liar:
        replayed = CliRunner().invoke(cli, [*record, liar, "--trust", str(trust_file)])
    assert replayed.exit_code != 0 and "stale answer" in replayed.stderr


@pytest.mark.soak  # a second solo node: 40-50 s at load 18, past the CI budget (run with -m soak)
def test_a_node_without_the_tree_refuses_every_proof_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark-only switch (``P2PCITY_STATE_COMMITMENT=chained``, chain/state.py): the node
    commits blocks and serves plain reads, keeps no tree, and says so to a proof read.

        pytest -m soak tests/node/test_light_client.py -k without_the_tree
    """
    monkeypatch.setenv("P2PCITY_STATE_COMMITMENT", "chained")  # inherited by the node process
    for running in processes.solo_node(tmp_path):
        monkeypatch.delenv("P2PCITY_STATE_COMMITMENT")  # this process, the client, runs as usual
        with Client(running.url) as client:
            client.put_record(Identity.generate(), NAME, b"deed v1", wait=True)
        assert httpx.get(f"{running.url}/records/{NAME}", timeout=30).status_code == 200
        for path in (f"/records/{NAME}", "/validators"):
            answer = httpx.get(f"{running.url}{path}", params={"proof": "true"}, timeout=30)
            assert answer.status_code == 501, answer.text
            assert "P2PCITY_STATE_COMMITMENT=chained" in answer.json()["error"]
        genesis_file = running.home / "genesis.json"
        verify = ["record", "get", NAME, "--verify", "--genesis", str(genesis_file), "--node", running.url]
        refused = CliRunner().invoke(cli, verify)
        assert refused.exit_code != 0
        assert "keeps no state tree" in refused.output and len(refused.output.strip().splitlines()) == 1, (
            refused.output
        )
