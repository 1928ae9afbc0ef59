"""``p2pcity data``: share encrypted datasets that stay available but invisible.

Every command that submits a transaction returns once it is committed (or
says why not); ``--no-wait`` returns as soon as the node accepted it.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from p2pcity.cli.errors import UserError
from p2pcity.cli.options import KEY, NO_WAIT, NODE
from p2pcity.cli.progress import TransferBar
from p2pcity.client import Client, ClientError
from p2pcity.client_light import LightClient
from p2pcity.crypto.keys import Identity, IdentityError, PublicIdentity
from p2pcity.sharing import EnvelopeError, SharingError
from p2pcity.sharing import client as sharing
from p2pcity.sharing.journal import Journal

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_ERRORS = (ClientError, SharingError, EnvelopeError, IdentityError)


def parse_expiry(text: str, now_ms: int) -> int:
    """``7d``/``12h``/``30m`` from now, an ISO 8601 time (UTC if no zone), epoch ms, or ``never``."""
    text = text.strip().lower()
    if text in ("", "never", "0"):
        return 0
    if match := _DURATION.match(text):
        return now_ms + int(match.group(1)) * _UNIT_MS[match.group(2)]
    if text.isdigit():
        value = int(text)
        if value < 10**11:  # before 1973 in ms: surely seconds, or a typo
            raise UserError(f"--expires {text}: give epoch milliseconds, a duration like 7d, or ISO 8601")
        return value
    try:
        when = datetime.fromisoformat(text.upper() if "t" in text else text)
    except ValueError:
        raise UserError(f"--expires {text!r}: use 7d / 12h / 30m, ISO 8601, epoch ms or 'never'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _id(text: str, what: str = "dataset id") -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{what} must be 64 hex characters, got {text!r}")
    return raw


def _public(text: str) -> PublicIdentity:
    try:
        return PublicIdentity.parse(text)
    except IdentityError as exc:
        raise UserError(f"--to: {exc}") from exc


def _proven(node_url: str, genesis_file: Path | None) -> LightClient | None:
    """A light client of ``node_url`` when a genesis file is given (the reads are then proven)."""
    if genesis_file is None:
        return None
    from p2pcity.cli.verify import light_client  # noqa: PLC0415 - only with --genesis

    return light_client(node_url, genesis_file)


def _identity(path: Path) -> Identity:
    try:
        return Identity.load(path)
    except IdentityError as exc:
        raise UserError(str(exc)) from exc


def _outcome(tx: dict[str, Any]) -> str:
    receipt = tx.get("receipt")
    if tx.get("status") == "committed" and receipt:
        return f"committed at height {receipt['height']}"
    return f"submitted {tx['hash']} (not waiting for the commit)"


CONFIRM = click.option(
    "--confirm-node",
    "confirm_urls",
    multiple=True,
    help="Another node's API URL (repeat): f+1 distinct nodes in all must agree on the validators' keys.",
)
GENESIS = click.option(
    "--genesis",
    "genesis_file",
    envvar="P2PCITY_GENESIS",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Verify what the node says with proofs, trusting only this genesis file (env P2PCITY_GENESIS).",
)


@click.group("data")
def data() -> None:
    """Share encrypted datasets: put, grant, get, revoke, audit, regrant."""


@data.command("put")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@KEY
@NODE
@click.option("--title", help="Public title (default: the file name).")
@click.option("--schema", default="", help="Public description of the format, e.g. a media type.")
@click.option("--tag", "tags", multiple=True, help="Public tag; repeatable.")
@click.option(
    "--new-copy",
    is_flag=True,
    help="Store another ciphertext (a new dataset) even if you already put this file.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="P2PCITY_STATE_DIR",
    help="Where interrupted puts and the index of your puts are kept "
    "(env P2PCITY_STATE_DIR; default $XDG_STATE_HOME/p2pcity or ~/.local/state/p2pcity).",
)
@NO_WAIT
def put(
    file: Path,
    key_file: Path,
    node_url: str,
    title: str | None,
    schema: str,
    tags: tuple[str, ...],
    new_copy: bool,
    state_dir: Path | None,
    no_wait: bool,
) -> None:
    """Encrypt FILE and register it; prints the dataset id.

    FILE is encrypted here; the node stores only the ciphertext, and the chain
    only public metadata and the sealed data key. Interrupted (Ctrl-C, a lost
    connection, a kill), the same command resumes: same ciphertext, upload
    from where the node stopped. A file you already put on this chain is not
    stored again: its dataset id is printed (--new-copy stores another).
    """
    identity = _identity(key_file)
    journal = Journal(state_dir)
    with Client(node_url) as node, TransferBar("upload") as bar:
        try:
            result = sharing.put_data(
                node,
                identity,
                file,
                title or file.name,
                schema=schema,
                tags=tags,
                wait=not no_wait,
                progress=bar.update,
                journal=journal,
                new_copy=new_copy,
                notice=bar.say,
            )
        except KeyboardInterrupt:
            raise UserError("interrupted: run the same command again to resume this put") from None
        except _ERRORS as exc:
            raise UserError(str(exc)) from exc
    click.echo(result.id.hex())
    if result.repeated:
        click.echo(
            f"already put: you stored this file as this dataset ({_outcome(result.tx)}); "
            "nothing stored again (--new-copy stores another ciphertext)",
            err=True,
        )
    else:
        click.echo(_outcome(result.tx), err=True)


@data.command("grant")
@click.argument("dataset_id")
@click.option("--to", "to", required=True, help="The grantee's public identity (p2pc1...).")
@KEY
@NODE
@click.option("--expires", default="never", show_default=True, help="7d, 12h, ISO 8601, epoch ms or never.")
@click.option("--purpose", default="", help="Why access is granted; recorded on chain.")
@click.option("--max-uses", type=click.IntRange(min=0), default=0, show_default=True, help="0: unlimited.")
@click.option("--threshold", type=click.IntRange(min=1), help="Proxies needed (default: f+1).")
@CONFIRM
@GENESIS
@NO_WAIT
def grant(
    dataset_id: str,
    to: str,
    key_file: Path,
    node_url: str,
    confirm_urls: tuple[str, ...],
    genesis_file: Path | None,
    expires: str,
    purpose: str,
    max_uses: int,
    threshold: int | None,
    no_wait: bool,
) -> None:
    """Grant --to access to DATASET_ID; prints the grant id.

    The re-encryption key is split among the current validators (any
    --threshold of them serve a request); nobody else learns anything. The
    validators' PRE keys are taken only when --node and the --confirm-node
    nodes (f+1 distinct ones in all) give the same answer, or, with
    --genesis, when their proofs verify (one node is then enough).
    """
    dataset, grantee = _id(dataset_id), _public(to)
    expires_at = parse_expiry(expires, int(time.time() * 1000))
    identity = _identity(key_file)
    confirm = [Client(url) for url in confirm_urls]
    proven = _proven(node_url, genesis_file)
    with Client(node_url) as node:
        try:
            result = sharing.grant(
                node,
                identity,
                dataset,
                grantee,
                confirm=confirm,
                expires_at_ms=expires_at,
                purpose=purpose,
                max_uses=max_uses,
                threshold=threshold,
                wait=not no_wait,
                proven=proven,
            )
        except _ERRORS as exc:
            raise UserError(str(exc)) from exc
        finally:
            for other in confirm:
                other.close()
            if proven is not None:
                proven.close()
    click.echo(result.id.hex())
    click.echo(_outcome(result.tx), err=True)


@data.command("get")
@click.argument("dataset_id")
@KEY
@NODE
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output file."
)
@click.option("--purpose", default="", help="Why you open it; recorded on chain in the audit log.")
@click.option("--grant", "grant_id", help="Use this grant (default: your newest live one).")
@click.option("--request", "request_tx", help="Reuse a committed access request (a retry spends no use).")
@GENESIS
def get(
    dataset_id: str,
    key_file: Path,
    node_url: str,
    out: Path,
    purpose: str,
    grant_id: str | None,
    request_tx: str | None,
    genesis_file: Path | None,
) -> None:
    """Open DATASET_ID (yours, or granted to you) into --out.

    Records an access request on chain, collects re-encrypted key fragments
    from the validators, then downloads, verifies and decrypts.
    """
    dataset = _id(dataset_id)
    grant_raw = _id(grant_id, "--grant") if grant_id else None
    request_raw = _id(request_tx, "--request") if request_tx else None
    identity = _identity(key_file)
    proven = _proven(node_url, genesis_file)
    with Client(node_url) as node:
        try:
            with TransferBar("download") as bar:
                opened = sharing.get_data(
                    node,
                    identity,
                    dataset,
                    out,
                    purpose=purpose,
                    grant_id=grant_raw,
                    request_tx=request_raw,
                    progress=bar.update,
                    proven=proven,
                )
        except _ERRORS as exc:
            raise UserError(str(exc)) from exc
        finally:
            if proven is not None:
                proven.close()
    for why in opened.rejected:
        click.echo(f"warning: dropped an invalid capsule fragment: {why}", err=True)
    click.echo(f"wrote {opened.size} bytes to {out}")


@data.command("regrant")
@click.argument("grant_id")
@KEY
@NODE
@click.option("--threshold", type=click.IntRange(min=1), help="Proxies needed (default: f+1 of the new set).")
@CONFIRM
@GENESIS
@NO_WAIT
def regrant(
    grant_id: str,
    key_file: Path,
    node_url: str,
    threshold: int | None,
    confirm_urls: tuple[str, ...],
    genesis_file: Path | None,
    no_wait: bool,
) -> None:
    """Refresh your grant GRANT_ID to the current validators.

    A grant's key fragments belong to the validators of the set it was made
    (or last regranted) for; a removed validator no longer serves. This
    splits the re-encryption key afresh among the current validators, with
    their PRE keys taken as for `data grant`; the grant's terms, uses and id
    stay. `data audit` says when a grant needs it.
    """
    grant = _id(grant_id, "grant id")
    identity = _identity(key_file)
    confirm = [Client(url) for url in confirm_urls]
    proven = _proven(node_url, genesis_file)
    with Client(node_url) as node:
        try:
            result = sharing.regrant(
                node, identity, grant, confirm=confirm, threshold=threshold, wait=not no_wait, proven=proven
            )
        except _ERRORS as exc:
            raise UserError(str(exc)) from exc
        finally:
            for other in confirm:
                other.close()
            if proven is not None:
                proven.close()
    click.echo(f"regranted {result.id.hex()}: {_outcome(result.tx)}")


@data.command("revoke")
@click.argument("dataset_id")
@click.option("--to", "to", required=True, help="The grantee whose grants to revoke (p2pc1...).")
@KEY
@NODE
@NO_WAIT
def revoke(dataset_id: str, to: str, key_file: Path, node_url: str, no_wait: bool) -> None:
    """Revoke your live grants to --to on DATASET_ID.

    Proxies refuse from the committed height on.
    """
    dataset, grantee = _id(dataset_id), _public(to)
    identity = _identity(key_file)
    with Client(node_url) as node:
        try:
            results = sharing.revoke(node, identity, dataset, grantee, wait=not no_wait)
        except _ERRORS as exc:
            raise UserError(str(exc)) from exc
    for result in results:
        click.echo(f"revoked grant {result.id.hex()}: {_outcome(result.tx)}")


@data.command("audit")
@click.argument("dataset_id")
@NODE
@click.option("--json", "as_json", is_flag=True)
def audit(dataset_id: str, node_url: str, as_json: bool) -> None:
    """Show DATASET_ID's grants and every access request, from the ledger."""
    dataset = _id(dataset_id)
    with Client(node_url) as node:
        try:
            report = sharing.audit(node, dataset)
        except _ERRORS as exc:
            raise UserError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    d = report["dataset"]
    click.echo(f"dataset {d['id']}  {d['title']!r}  owner {d['owner'][:16]}  height {d['height']}")
    for g in report["grants"]:
        state = f"revoked at {g['revoked_height']}" if g["revoked_height"] else g["status"]
        uses = f"{g['uses']}/{g['max_uses'] or 'inf'}"
        proxies = f"proxies {g['live_proxies']}/{len(g['proxies'])} (need {g['threshold']})"
        who = f"grant  {g['id'][:16]}  to {g['grantee'][:16]}"
        click.echo(f"{who}  {state}  uses {uses}  {proxies}  {g['purpose']!r}")
    for g in report["grants"]:
        if g["warning"]:
            click.echo(f"warning: grant {g['id']}: {g['warning']}", err=True)
            fix = f"p2pcity data regrant {g['id']} --key OWNER_KEY --node {node_url}"
            click.echo(f"  the owner runs: {fix}", err=True)
    for a in report["accesses"]:
        verdict = "granted" if a["granted"] else f"refused: {a['reason']}"
        click.echo(f"access height {a['height']}  by {a['grantee'][:16]}  {verdict}  {a['purpose']!r}")
