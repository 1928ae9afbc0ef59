"""``p2pcity demo``: a local city network playing the whole story, step by step.

A real-estate registry, a bank, a court and a tax bureau each run a node (real
processes on 127.0.0.1). A citizen's property certificate is notarised, shared
with the bank for a mortgage, refused to the court, revoked, and audited.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import click

from p2pcity.cli.errors import UserError
from p2pcity.client import Client, ClientError
from p2pcity.crypto.hashing import MerkleProof, verify_merkle_proof
from p2pcity.crypto.keys import Identity
from p2pcity.netem.profiles import wan
from p2pcity.sharing import SharingError
from p2pcity.sharing import client as sharing
from p2pcity.testnet import Testnet

CERTIFICATE = """PROPERTY CERTIFICATE No. 2026-0001742
Parcel: Riverside district, lot 7, 412 m2
Owner: A. Citizen
Encumbrances: none
Issued by the Real-Estate Registry
"""


def step(n: int, text: str) -> None:
    click.secho(f"\n[{n}] {text}", bold=True)


def say(text: str) -> None:
    click.echo(f"    {text}")


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the network's homes and logs here (default: a temporary directory).",
)
@click.option(
    "--keep", is_flag=True, help="Leave the network running at the end (stop it with testnet down)."
)
@click.option(
    "--wan",
    "wan_seed",
    type=int,
    default=None,
    metavar="SEED",
    help="Play it over a city WAN: 10-50 ms RTT and 0.1-1% loss a link, seeded (netem; needs root).",
)
def demo(directory: Path | None, keep: bool, wan_seed: int | None) -> None:
    """Start four districts and play: notarise, share, refuse, revoke, audit."""
    with tempfile.TemporaryDirectory(prefix="p2pcity-demo-") as tmp:
        root = directory or Path(tmp)
        step(1, "Starting four districts: registry, bank, court, tax bureau (real node processes)")
        net = Testnet.create(root / "city", 4, chain_id="riverside-city", netem=wan_seed is not None)
        try:
            net.start(timeout=120)
            if net.emulation is not None and wan_seed is not None:
                net.emulation.apply(wan(net.emulation.rules, wan_seed))
                say(f"every link through a WAN profile (seed {wan_seed}; netem {net.emulation.mode})")
            for node in net.nodes:
                say(f"{node.name:9} {node.api}  peer {node.peer_id[-12:]}")
            net.wait_for_height(2, timeout=60)
            say(f"blocks are being committed: heights {net.heights()}")
            _story(net, root)
        except (ClientError, SharingError) as exc:
            raise UserError(f"demo failed: {exc}") from exc
        finally:
            if keep and directory is not None:
                say(f"network left running: p2pcity testnet down --dir {root / 'city'}")
            else:
                step(9, "Shutting the network down")
                net.down()
                say("all four nodes stopped cleanly")


def _settle(net: Testnet, writer: Client) -> None:
    """Wait until every district has committed what ``writer``'s node has: reads go to other nodes."""
    net.wait_for_height(int(writer.status()["height"]), timeout=60)


def _story(net: Testnet, root: Path) -> None:
    registry, bank, court = (Client(net.nodes[i].api) for i in range(3))
    citizen, banker, judge = Identity.generate(), Identity.generate(), Identity.generate()
    cert = root / "certificate.txt"
    cert.write_text(CERTIFICATE)

    step(2, "The registry notarises the property certificate (its SHA-256 goes on chain, not the text)")
    started = time.monotonic()
    registry.put_record(
        citizen,
        "land/riverside-7",
        cert.read_bytes(),
        media_type="text/plain",
        metadata={"kind": "property-certificate"},
    )
    _settle(net, registry)
    record = bank.record("land/riverside-7")
    say(
        f"committed in {time.monotonic() - started:.1f} s at height {record['height']}; "
        f"sha256 {record['sha256'][:16]}…"
    )

    step(3, "The bank checks it from its own node, with a Merkle proof against the block header")
    proof = bank.get(f"/txs/{record['tx']}/proof")
    header = bank.block(proof["height"])
    ok = verify_merkle_proof(
        bytes.fromhex(header["tx_root"]), bytes.fromhex(record["tx"]), MerkleProof.from_json(proof["proof"])
    )
    same = hashlib.sha256(cert.read_bytes()).hexdigest() == record["sha256"]
    say(f"inclusion proof valid: {ok}; document digest matches: {same}")
    hashes = {Client(n.api).block(record["height"])["hash"] for n in net.nodes}
    say(f"block {record['height']} has the same hash on all four nodes: {len(hashes) == 1}")

    step(4, "The citizen encrypts the certificate and registers it as a dataset (no plaintext leaves her)")
    put = sharing.put_data(registry, citizen, cert, "property certificate", tags=("land",))
    dataset_id = put.id
    _settle(net, registry)
    say(f"dataset {dataset_id.hex()[:16]}… stored as ciphertext on the registry's node")

    step(5, "She grants the bank access: one key fragment per validator, any 2 of 4 suffice")
    say("(she takes the validators' keys only when f+1 nodes agree on them; the grant names its purpose)")
    granted = sharing.grant(
        registry, citizen, dataset_id, banker.public, confirm=[bank, court], purpose="mortgage"
    )
    _settle(net, registry)
    say(f"grant {granted.id.hex()[:16]}… committed")

    step(6, "The bank requests access (on chain), collects re-encrypted fragments, decrypts")
    out = root / "bank-copy.txt"
    opened = sharing.get_data(bank, banker, dataset_id, out, purpose="mortgage")
    say(
        f"bank opened {opened.size} bytes; identical to the original: {out.read_bytes() == cert.read_bytes()}"
    )

    step(7, "The court asks under the bank's grant: refused, and the attempt is on record")
    try:
        sharing.get_data(court, judge, dataset_id, root / "court-copy.txt", grant_id=granted.id)
        say("UNEXPECTED: the court got the data")
    except (SharingError, ClientError) as exc:
        say(f"refused: {exc}")

    step(8, "The citizen revokes the bank's grant; the bank is refused from then on; the audit log")
    sharing.revoke(registry, citizen, dataset_id, banker.public)
    _settle(net, registry)
    try:
        sharing.get_data(bank, banker, dataset_id, root / "bank-again.txt", grant_id=granted.id)
        say("UNEXPECTED: the bank still got the data")
    except (SharingError, ClientError) as exc:
        say(f"bank refused after revoke: {exc}")
    for access in sharing.audit(bank, dataset_id)["accesses"]:
        verdict = "granted" if access["granted"] else f"refused ({access['reason']})"
        say(
            f"height {access['height']:>4}  {access['grantee'][:12]}…  {access['purpose'] or '-':9} {verdict}"
        )
    for client in (registry, bank, court):
        client.close()
