"""Options shared by the commands that talk to a node as a client."""

from __future__ import annotations

from pathlib import Path

import click

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
