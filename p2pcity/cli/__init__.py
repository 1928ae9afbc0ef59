"""The ``p2pcity`` command line, for district operators and developers.

Every failure a user can cause (a wrong flag, a missing or corrupt file, an
unreachable node, a rejected transaction) ends with one line on stderr and a
non-zero exit code; tracebacks are for bugs only.
"""

from __future__ import annotations

import sys

import click

from p2pcity import __version__
from p2pcity.cli.data import data
from p2pcity.cli.demo import demo
from p2pcity.cli.errors import UserError, run_guarded
from p2pcity.cli.keys import keys
from p2pcity.cli.node import genesis, init, start
from p2pcity.cli.records import record
from p2pcity.cli.testnet import testnet


class _Commands(click.Group):
    """Our commands, plus ``bootstrap`` loaded on first use (it imports this package's errors)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), "bootstrap"])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "bootstrap":
            from bootstrap.cli import bootstrap  # noqa: PLC0415 - lazy: avoids an import cycle

            return bootstrap
        return super().get_command(ctx, name)


@click.group(
    cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="p2pcity")
def cli() -> None:
    """p2pcity: a permissioned blockchain for smart-city districts.

    Districts run nodes that agree on one ledger (HotStuff BFT over libp2p)
    and share encrypted data that stays available but invisible.
    """


for command in (demo, keys, init, start, genesis, testnet, record, data):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_guarded(cli, argv))


__all__ = ["UserError", "cli", "main"]
