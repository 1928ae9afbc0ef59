"""Issue 10's attacker, on a real 4-district testnet: grants nobody can get around.

Written from the attacker's side. A grantee who lost her access (revoked,
expired, used up, or asking for another purpose) submits every sequence of
transactions she can sign, copying any public on-chain field, and asks the
real proxies: she obtains no capsule fragment, and the owner's audit log
shows exactly the accesses that succeeded. A node that lies to the owner
about the validators' keys, or to the grantee about a dataset entry, is
caught by the client with a clear error (a small lying HTTP proxy in front
of a real node). A colluding validator (fewer than t) with a revoked grantee
learns nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from p2pcity.chain.entries import DatasetEntry, DistrictEntry, GrantEntry
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.handlers import dataset_id_of, grant_id_of
from p2pcity.client import Client, ClientError
from p2pcity.client_light import LightClient, Trust, VerificationError
from p2pcity.codec import decode, encode
from p2pcity.config import NodeConfig
from p2pcity.crypto import umbral
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import SharingError
from p2pcity.sharing import client as sharing
from p2pcity.sharing.datakey import dataset_body, kfrag_signer, read_capsule
from p2pcity.sharing.envelope import new_data_key
from p2pcity.sharing.grantee import recover_data_key
from p2pcity.sharing.grants import kfrag_binding
from p2pcity.sharing.messages import ReencryptRequest
from p2pcity.testnet import Testnet
from p2pcity.types.tx import AccessRequest, Transaction

from .lying_proxy import LyingProxy

pytestmark = pytest.mark.slow
FAST = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}
CHAIN = "attack-city"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    directory = tmp_path_factory.mktemp("attack-net")
    testnet = Testnet.create(directory, 4, chain_id=CHAIN, config_overrides=FAST)
    testnet.start(timeout=90)
    try:
        yield testnet
    finally:
        testnet.down()


@pytest.fixture(scope="module")
def nodes(net: Testnet) -> Iterator[list[Client]]:
    clients = [Client(n.api, timeout=30) for n in net.nodes]
    yield clients
    for c in clients:
        c.close()


def commit(node: Client, who: Identity, body: Any) -> tuple[Transaction, dict[str, Any]]:
    """Sign and submit as the attacker would, wait for the commit; the receipt, refused or not."""
    made: list[Transaction] = []

    def make(nonce: int) -> Transaction:
        made.append(Transaction.create(who.signer, CHAIN, nonce, body))
        return made[-1]

    tx = make(node.next_nonce(who.signer.public_key))
    node.submit(tx)
    return tx, node.wait_for_tx(tx.hash.hex(), timeout=60)["receipt"]


def ask(node: Client, who: Identity, grant_id: bytes, request_tx: bytes) -> tuple[int, set[str]]:
    """Ask the grant's proxies through a node: (capsule fragments obtained, refusal codes)."""
    request = ReencryptRequest.sign(who.signer, CHAIN, grant_id, request_tx)
    # A proxy one block behind answers "not-committed" for a request just committed elsewhere;
    # she asks again, as the sharing client does (its retryable codes), for the final answer.
    deadline = time.monotonic() + 30
    while True:
        try:
            reply = node.post("/reencrypt", {"request": encode(request).hex()})
        except ClientError as exc:
            return 0, {f"http-{exc.status}"}
        codes = {f["code"] for f in reply["failures"]}
        if "not-committed" not in codes or time.monotonic() > deadline:
            return len(reply["cfrags"]), codes
        time.sleep(0.3)


def settle(net: Testnet, node: Client) -> None:
    net.wait_for_height(int(node.status()["height"]), timeout=60)


def share(
    net: Testnet, nodes: list[Client], tmp: Path, **terms: Any
) -> tuple[Identity, Identity, bytes, bytes]:
    """The owner shares a file with the grantee, who opens it once: (owner, grantee, dataset, grant)."""
    owner, grantee = Identity.generate(), Identity.generate()
    original = tmp / "record.txt"
    original.write_bytes(b"referral history " + os.urandom(2000))
    dataset = sharing.put_data(nodes[0], owner, original, "referral").id
    grant = sharing.grant(nodes[0], owner, dataset, grantee.public, confirm=[nodes[1]], **terms).id
    settle(net, nodes[0])
    copy = tmp / "opened.txt"
    # Opened through the holder's own node: fetching the blob from a single holder can time out
    # on a loaded machine (issue 12: replication); nothing here depends on where she reads.
    sharing.get_data(nodes[0], grantee, dataset, copy, purpose=terms.get("purpose", ""))
    assert copy.read_bytes() == original.read_bytes()
    return owner, grantee, dataset, grant


def every_sequence_she_can_sign(
    node: Client, grantee: Identity, owner_dataset: bytes, lost_grant: bytes, first_request: bytes
) -> list[tuple[str, int, set[str]]]:
    """What the attacker tries, each with what she obtains: (attempt, cfrags, codes)."""
    tried: list[tuple[str, int, set[str]]] = []
    dataset = sharing.dataset_entry(node, owner_dataset)
    lost = sharing.grant_entry(node, lost_grant)

    # 1. Ask again under the lost grant: a new request, and the one that was served before.
    tx, _ = commit(node, grantee, AccessRequest(lost_grant, lost.grant.purpose))
    tried.append(("new request under the lost grant", *ask(node, grantee, lost_grant, tx.hash)))
    tried.append(("the request served before", *ask(node, grantee, lost_grant, first_request)))
    # 2. A request for any other purpose.
    tx, _ = commit(node, grantee, AccessRequest(lost_grant, "marketing-resale"))
    tried.append(("another purpose", *ask(node, grantee, lost_grant, tx.hash)))
    # 3. Copy the owner's dataset wholesale (capsule, sealed key, hash, size, holders, proofs).
    _, receipt = commit(node, grantee, replace(dataset.dataset))
    assert not receipt["ok"] and "proof of possession" in receipt["error"]
    # 4. Copy it with her own fragment signer and proofs: she cannot sign for the delegating key.
    own = dataset_body(
        grantee, CHAIN, new_data_key(), dataset.dataset.ciphertext_hash, dataset.dataset.size, "x"
    )
    forged = replace(dataset.dataset, verifying_key=own.verifying_key, signer_proof=own.signer_proof)
    _, receipt = commit(node, grantee, forged)
    assert not receipt["ok"], receipt
    # 5. Grant herself the owner's dataset, no expiry, no limit, no purpose.
    unlimited = replace(lost.grant, expires_at_ms=0, max_uses=0, purpose="")
    _, receipt = commit(node, grantee, unlimited)
    assert not receipt["ok"] and "only the dataset owner" in receipt["error"]
    # 6. A genuine dataset of her own, and a grant of it to herself reusing the owner's fragments:
    #    first under the owner's verifying key (the ledger refuses), then under her own.
    mine_tx, receipt = commit(node, grantee, own)
    assert receipt["ok"], receipt
    mine = dataset_id_of(mine_tx)
    _, receipt = commit(node, grantee, replace(unlimited, dataset_id=mine))
    assert not receipt["ok"] and "verifying key" in receipt["error"]
    lifted = replace(unlimited, dataset_id=mine, verifying_key=own.verifying_key)
    grant_tx, receipt = commit(node, grantee, lifted)
    assert receipt["ok"], receipt  # the ledger cannot see inside the sealed fragments...
    self_grant = grant_id_of(grant_tx)
    tx, receipt = commit(node, grantee, AccessRequest(self_grant, ""))
    assert receipt["ok"], receipt
    got = ask(node, grantee, self_grant, tx.hash)
    assert got[1] == {"bad-kfrag"}, got  # ...but no proxy opens a fragment lifted from another grant
    tried.append(("owner's fragments in a grant of her own dataset", *got))
    return tried


@pytest.mark.parametrize("how", ["revoked", "expired", "used-up"])
def test_a_grantee_who_lost_access_obtains_no_capsule_fragment(
    net: Testnet, nodes: list[Client], tmp_path: Path, how: str
) -> None:
    terms: dict[str, Any] = {"purpose": "mortgage"}
    if how == "expired":
        terms["expires_at_ms"] = int(time.time() * 1000) + 15_000
    if how == "used-up":
        terms["max_uses"] = 1
    owner, grantee, dataset, grant = share(net, nodes, tmp_path, **terms)
    first = sharing.audit(nodes[1], dataset)["accesses"][0]["tx"]
    if how == "revoked":
        sharing.revoke(nodes[0], owner, dataset, grantee.public)
    elif how == "expired":
        deadline = terms["expires_at_ms"] + 1000
        while int(nodes[1].block(int(nodes[1].status()["height"]))["timestamp_ms"]) < deadline:
            time.sleep(0.5)
    settle(net, nodes[0])

    tried = every_sequence_she_can_sign(nodes[1], grantee, dataset, grant, bytes.fromhex(first))
    if how == "used-up":
        # Her one counted use stays hers: proxies that had not answered it yet may, once each
        # (fragments of a key she already opened); asked again, every proxy has served it.
        reasked = [t for t in tried if t[0] == "the request served before"]
        assert reasked[0][1] <= 2, tried
        assert ask(nodes[1], grantee, grant, bytes.fromhex(first)) == (0, {"already-served"})
        tried = [t for t in tried if t not in reasked]
    assert [(what, n) for what, n, _ in tried] == [(what, 0) for what, _, _ in tried], tried
    with pytest.raises((SharingError, ClientError)):
        sharing.get_data(nodes[2], grantee, dataset, tmp_path / "again.txt", purpose="mortgage")
    # The owner's audit log: every attempt on her dataset, and exactly one access granted.
    log = sharing.audit(nodes[2], dataset)["accesses"]
    assert [a["granted"] for a in log].count(True) == 1
    refused = {a["reason"] for a in log if not a["granted"]}
    assert how in refused and refused <= {how, "wrong-purpose"}, refused


def _all_keys_to(node_pre_key: str) -> Any:
    def lie(answer: dict[str, Any]) -> dict[str, Any]:
        return {**answer, "districts": [{**d, "pre_key": node_pre_key} for d in answer["districts"]]}

    return lie


def test_a_node_lying_about_validator_keys_is_caught(
    net: Testnet, nodes: list[Client], tmp_path: Path
) -> None:
    owner, bank = Identity.generate(), Identity.generate()
    doc = tmp_path / "deed.txt"
    doc.write_bytes(b"deed of lot 7")
    dataset = sharing.put_data(nodes[0], owner, doc, "deed").id
    settle(net, nodes[0])
    own_key = next(
        d["pre_key"] for d in nodes[0].get("/validators")["districts"] if d["name"] == net.nodes[0].name
    )
    lie = {"/validators": _all_keys_to(own_key)}
    with (
        LyingProxy(net.nodes[0].api, lie, node_id="liar-a") as a,
        LyingProxy(net.nodes[0].api, lie, node_id="liar-b") as b,
    ):
        liar_a, liar_b = Client(a), Client(b)
        # The liar alone is not enough, and an honest node contradicts it.
        with pytest.raises(SharingError, match="from 2 distinct nodes, got 1"):
            sharing.grant(liar_a, owner, dataset, bank.public)
        with pytest.raises(SharingError, match="nodes disagree about the validators' PRE keys"):
            sharing.grant(liar_a, owner, dataset, bank.public, confirm=[nodes[1]])
        # Two colluding liars fool the client; the ledger still refuses fragments not sealed to
        # the registered keys of distinct validators.
        with pytest.raises(ClientError, match="not sealed to its validator's registered PRE key"):
            sharing.grant(liar_a, owner, dataset, bank.public, confirm=[liar_b])
        liar_a.close()
        liar_b.close()
    # The control: honest nodes agree, and the grant commits.
    assert sharing.grant(nodes[0], owner, dataset, bank.public, confirm=[nodes[1]]).tx["receipt"]["ok"]


def test_a_node_lying_to_the_grantee_about_the_dataset_or_grant_is_caught(
    net: Testnet, nodes: list[Client], tmp_path: Path
) -> None:
    _, grantee, dataset, grant = share(net, nodes, tmp_path)
    liar_keys = Identity.generate()

    def other_ciphertext(answer: dict[str, Any]) -> dict[str, Any]:
        entry = decode(DatasetEntry, bytes.fromhex(answer["entry"]))
        altered = replace(entry, dataset=replace(entry.dataset, ciphertext_hash=os.urandom(32)))
        return {"entry": encode(altered).hex()}

    def fabricated(answer: dict[str, Any]) -> dict[str, Any]:
        # A whole dataset of the liar's own making (valid proofs of its own keys), under the real id.
        entry = decode(DatasetEntry, bytes.fromhex(answer["entry"]))
        body = dataset_body(liar_keys, CHAIN, new_data_key(), os.urandom(32), 10, "referral")
        return {"entry": encode(replace(entry, dataset=body)).hex()}

    def unlimited(answer: dict[str, Any]) -> dict[str, Any]:
        entry = decode(GrantEntry, bytes.fromhex(answer["entry"]))
        return {"entry": encode(replace(entry, grant=replace(entry.grant, threshold=1))).hex()}

    lies = [
        ({f"/datasets/{dataset.hex()}/entry": other_ciphertext}, "dataset entry that does not verify"),
        ({f"/datasets/{dataset.hex()}/entry": fabricated}, "dataset entry that does not verify"),
        ({f"/grants/{grant.hex()}/entry": unlimited}, "grant entry that does not verify"),
    ]
    for lie, caught in lies:
        with (
            LyingProxy(net.nodes[1].api, lie) as url,
            Client(url) as liar,
            pytest.raises(SharingError, match=caught),
        ):
            sharing.get_data(liar, grantee, dataset, tmp_path / "lied.txt", grant_id=grant)
        assert not (tmp_path / "lied.txt").exists()


def test_fewer_than_t_colluding_proxies_with_a_revoked_grantee_learn_nothing(
    net: Testnet, nodes: list[Client], tmp_path: Path
) -> None:
    owner, grantee, dataset, grant_id = share(net, nodes, tmp_path)
    sharing.revoke(nodes[0], owner, dataset, grantee.public)
    settle(net, nodes[0])
    # Validator 0's operator hands its identity to the grantee: one of t = 2.
    colluder = Identity.load(NodeConfig.load(net.nodes[0].home).identity_file)
    grant: GrantEntry = sharing.grant_entry(nodes[1], grant_id)
    entry = sharing.dataset_entry(nodes[1], dataset)
    mine = next(k for k in grant.grant.kfrags if k.validator == colluder.signer.public_key)
    binding = kfrag_binding(CHAIN, grant.grant, mine.validator, mine.pre_key)
    secret = umbral.SecretKey.from_bytes(colluder.pre_secret)
    opened = read_capsule(entry.dataset)
    kfrag = umbral.KeyFrag.from_bytes(umbral.decrypt_from(secret, mine.sealed, binding)).verify(
        umbral.PublicKey.from_bytes(kfrag_signer(owner).verifying_key().to_bytes()),
        opened.delegating_key,
        umbral.PublicKey.from_bytes(grantee.public.pre_key),
    )
    own_cfrag = umbral.reencrypt(opened.capsule, kfrag).to_bytes()
    # The honest proxies refuse the revoked grant, so she holds one fragment of the two needed.
    tx, _ = commit(nodes[1], grantee, AccessRequest(grant_id, ""))
    served, codes = ask(nodes[1], grantee, grant_id, tx.hash)
    assert served == 0 and codes == {"http-403"}
    with pytest.raises(SharingError, match="1 valid capsule fragments, 2 needed"):
        recover_data_key(grantee, entry, grant, [own_cfrag, own_cfrag])


def test_with_proofs_one_node_is_enough_and_a_lie_is_caught_with_no_honest_node_to_compare(
    net: Testnet, nodes: list[Client], tmp_path: Path
) -> None:
    """``proven`` (the light client, issue 13): the owner takes the validators' PRE keys, and the
    grantee the dataset and grant, from proofs against a certified header, so one node suffices
    and a lie in the proven answer is caught even when no honest node is asked."""
    trust = Trust.from_genesis(Genesis.load(net.dir / "genesis.json"))
    owner, grantee = Identity.generate(), Identity.generate()
    doc = tmp_path / "deed.txt"
    doc.write_bytes(b"deed of lot 9")
    dataset = sharing.put_data(nodes[0], owner, doc, "deed").id
    settle(net, nodes[0])

    def own_keys(env: dict[str, Any]) -> dict[str, Any]:
        if "entries" not in env:
            return env
        first = decode(DistrictEntry, bytes.fromhex(env["entries"][1]["value"])).district.pre_key
        for entry in env["entries"][1:]:
            d = decode(DistrictEntry, bytes.fromhex(entry["value"]))
            entry["value"] = encode(replace(d, district=replace(d.district, pre_key=first))).hex()
        return env

    with (
        LyingProxy(net.nodes[0].api, {"/validators": own_keys}) as url,
        Client(url) as liar,
        LightClient(url, trust) as light,
        pytest.raises(VerificationError, match="value was altered"),
    ):
        sharing.grant(liar, owner, dataset, grantee.public, proven=light)
    with LightClient(net.nodes[0].api, trust) as light:
        grant = sharing.grant(nodes[0], owner, dataset, grantee.public, proven=light)
    assert grant.tx["receipt"]["ok"]
    settle(net, nodes[1])

    def more_uses(env: dict[str, Any]) -> dict[str, Any]:
        if "entries" in env:
            entry = decode(GrantEntry, bytes.fromhex(env["entries"][0]["value"]))
            env["entries"][0]["value"] = encode(replace(entry, uses=entry.uses + 7)).hex()
        return env

    with (
        LyingProxy(net.nodes[1].api, {f"/grants/{grant.id.hex()}": more_uses}) as url,
        Client(url) as liar,
        LightClient(url, trust) as light,
        pytest.raises(VerificationError, match="value was altered"),
    ):
        sharing.get_data(liar, grantee, dataset, tmp_path / "lied.txt", grant_id=grant.id, proven=light)
    with LightClient(net.nodes[0].api, trust) as light:
        opened = sharing.get_data(nodes[0], grantee, dataset, tmp_path / "open.txt", proven=light)
    assert (tmp_path / "open.txt").read_bytes() == b"deed of lot 9" and opened.grant_id == grant.id
