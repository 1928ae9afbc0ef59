"""Options shared by the commands that talk to a node as a client."""

from __future__ import annotations

from pathlib import Path

import click

from p2pcity.crypto.accounts import AccountError, parse_account_hex

NODE = click.option(
    "--node",
    "node_url",
    default="http://127.0.0.1:8700",
    show_default=True,
    envvar="P2PCITY_NODE",
    help="API URL of any node (env P2PCITY_NODE).",
)
KEY = click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your identity file (it signs the transaction).",
)
NO_WAIT = click.option("--no-wait", is_flag=True, help="Return once submitted instead of once committed.")


def account_hex(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: an account in either form (hex or p2pc1…) becomes its hex; garbage is refused."""
    if value is None:
        return None
    try:
        return parse_account_hex(value)
    except AccountError as exc:
        raise click.BadParameter(str(exc)) from exc
