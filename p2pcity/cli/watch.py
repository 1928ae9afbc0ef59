"""``p2pcity watch``: follow a node's event stream, one line per event (or JSON lines)."""

from __future__ import annotations

import json
from typing import Any

import click

from p2pcity.cli.options import NODE, account_hex

TOPICS = ("blocks", "txs", "records", "dataset")


def event_line(event: dict[str, Any]) -> str:
    """One human line per event: its cursor, its kind and what it is about."""
    kind = event.get("event")
    short = {k: str(v)[:16] for k, v in event.items() if isinstance(v, str)}
    if kind == "block":
        detail = f"height {event['height']} {short['hash']} {event['tx_count']} tx"
    elif kind == "tx":
        status = "ok" if event.get("ok") else f"refused: {event.get('error')}"
        detail = f"{event['kind']} from {short['sender']} nonce {event['nonce']} {status}"
    elif kind == "record":
        detail = f"{event['name']} v{event['version']} sha256 {short['sha256']} by {short['signer']}"
    elif kind == "access":
        outcome = "granted" if event.get("granted") else f"refused: {event.get('reason')}"
        detail = f"dataset {short['dataset']} grant {short['grant']} to {short['grantee']} {outcome}"
    elif kind in ("grant", "revoke"):
        detail = f"dataset {short['dataset']} grant {short['grant']} to {short['grantee']}"
    elif kind == "dataset":
        detail = f"dataset {short['dataset']} registered by {short['owner']}"
    else:
        detail = json.dumps(event, sort_keys=True)
    return f"{event.get('cursor')} {kind} {detail}"


@click.command()
@click.option("--topic", type=click.Choice(TOPICS), default="blocks", show_default=True)
@click.option(
    "--account", callback=account_hex, help="txs: only this sender (64 hex digits, or its p2pc1… identity)."
)
@click.option("--namespace", help="records: only this namespace.")
@click.option("--name", help="records: only this record.")
@click.option("--dataset", help="dataset: the dataset id (hex).")
@click.option("--after", help="Resume after this cursor (an event's first field); default: from now.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    help="Reconnect attempts in a row before giving up, backing off up to 5 s each "
    "(default: the client's, 8).",
)
@NODE
def watch(
    topic: str,
    account: str | None,
    namespace: str | None,
    name: str | None,
    dataset: str | None,
    after: str | None,
    count: int | None,
    as_json: bool,
    retries: int | None,
    node_url: str,
) -> None:
    """Follow what commits: blocks, an account's transactions, records, a dataset's grants and accesses.

    Each event starts with its cursor; pass the last one to --after to resume
    later with nothing missed and nothing twice. A dropped connection is
    resumed by itself.
    """
    from p2pcity.client import Client  # noqa: PLC0415 - lazy: keeps the CLI's start fast
    from p2pcity.client_stream import MAX_RECONNECTS  # noqa: PLC0415

    seen = 0
    with Client(node_url) as client:
        stream = client.events(
            topic,
            after=after,
            account=account,
            namespace=namespace,
            name=name,
            dataset=dataset,
            retries=MAX_RECONNECTS if retries is None else retries,
        )
        for event in stream:
            click.echo(json.dumps(event, sort_keys=True) if as_json else event_line(event))
            seen += 1
            if count is not None and seen >= count:
                return
