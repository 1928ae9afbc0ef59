"""The ``p2pcity`` command line, for district operators and developers.

Every failure a user can cause (a wrong flag, a missing or corrupt file, an
unreachable node, a rejected transaction) ends with one line on stderr and a
non-zero exit code; tracebacks are for bugs only.
"""

from __future__ import annotations

import importlib
import sys

import click

from p2pcity import __version__
from p2pcity.cli.errors import UserError, run_guarded

# name: (module, attribute, one-line help). Imported when used, so that a command that needs
# no libp2p (``--version``, ``record get``, ``watch``, ``testnet status``) starts fast.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "bootstrap": ("bootstrap.cli", "bootstrap", "Run a bootstrap node (peer routing, no consensus role)."),
    "data": ("p2pcity.cli.data", "data", "Share encrypted datasets: put, grant, get, revoke, audit."),
    "demo": ("p2pcity.cli.demo", "demo", "Run the whole story on a local multi-district network."),
    "district": ("p2pcity.cli.district", "district", "Validator-set changes: propose, approve, submit, list"),
    "genesis": ("p2pcity.cli.node", "genesis", "Create and inspect genesis files."),
    "init": ("p2pcity.cli.node", "init", "Create a node home: keys, config and genesis."),
    "keys": ("p2pcity.cli.keys", "keys", "Create and inspect identity files."),
    "record": ("p2pcity.cli.records", "record", "Notarise documents: put and get records."),
    "start": ("p2pcity.cli.node", "start", "Run a node from its home directory."),
    "testnet": ("p2pcity.cli.testnet", "testnet", "Run a local multi-district testnet."),
    "verify": ("p2pcity.cli.verify", "verify", "Check records, datasets, grants, validators with proofs."),
    "watch": ("p2pcity.cli.watch", "watch", "Follow what commits: blocks, txs, records, grants."),
}


class _Commands(click.Group):
    """Subcommands loaded on first use (``--help`` lists them without importing them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in sorted(COMMANDS)])


@click.group(
    cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="p2pcity")
def cli() -> None:
    """p2pcity: a permissioned blockchain for smart-city districts.

    Districts run nodes that agree on one ledger (HotStuff BFT over libp2p)
    and share encrypted data that stays available but invisible.
    """


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_guarded(cli, argv))


__all__ = ["UserError", "cli", "main"]
