"""``python -m bootstrap init|start``; the click group mounts as ``p2pcity bootstrap`` too.

Every failure an operator can cause ends with one ``error: ...`` line on
stderr and a non-zero exit: 2 for a bad command line, 1 for the rest.
libp2p (1.5 s to import) is imported only by the commands that need it, so
a typo is answered at once.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from bootstrap.config import DEFAULT_LISTEN, BootstrapConfig
from p2pcity.cli.errors import UserError
from p2pcity.config import ConfigError

# An operator error, printed as one ``error: ...`` line (the same class as the p2pcity CLI's).
BootstrapError = UserError


@contextmanager
def _operator_errors() -> Iterator[None]:
    """Turn the errors bad files or settings cause into one line (never a traceback).

    Those are ValueError subclasses (our ConfigError, GenesisError, the
    network layer's ConfigError), OSError, and the network layer's NetError
    (e.g. a busy port).
    """
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, ValueError | OSError) and not _is_net_error(exc):
            raise
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise BootstrapError(message or type(exc).__name__) from exc


def _is_net_error(exc: Exception) -> bool:
    # Looked up, not imported: importing p2pcity.net costs 1.5 s, and if it
    # raised a NetError it is loaded already.
    errors = sys.modules.get("p2pcity.net.errors")
    return errors is not None and isinstance(exc, errors.NetError)


class _StartByDefault(click.Group):
    """``python -m bootstrap --home DIR`` means ``start --home DIR`` (deploy/ files use it)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0].startswith("-") and args[0] not in ctx.help_option_names:
            args = ["start", *args]
        return super().parse_args(ctx, args)


HOME = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The bootstrap node's home directory.",
)


@click.group(
    "bootstrap",
    cls=_StartByDefault,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def bootstrap() -> None:
    """Run a p2pcity bootstrap node: the rendezvous and DHT entry point districts dial first.

    It admits only the peers the chain knows, holds no ledger and takes no
    part in consensus. Without a command, runs 'start'.
    """


@bootstrap.command("init")
@HOME
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, help="libp2p listen multiaddr.")
@click.option(
    "--announce",
    multiple=True,
    help="Address districts dial, e.g. /ip4/203.0.113.7/tcp/7000 or /dns4/boot1.example.city/tcp/7000; "
    "repeatable.",
)
@click.option(
    "--genesis",
    "genesis_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The chain's genesis file; copied into the home (or put it there before 'start').",
)
@click.option(
    "--psk-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the chain's private-network key (64 hex characters).",
)
@click.option("--extra-peer", "extra_peers", multiple=True, help="Peer id to admit besides the districts.")
@click.option(
    "--follow",
    default="auto",
    show_default=True,
    help='How to follow the district set: "auto" (ask the validators), "off", or a trusted node\'s API URL.',
)
@click.option("--force", is_flag=True, help="Rewrite an existing home's config (the key is always kept).")
def init(
    home: Path,
    listen: str,
    announce: tuple[str, ...],
    genesis_file: Path | None,
    psk_file: Path | None,
    extra_peers: tuple[str, ...],
    follow: str,
    force: bool,
) -> None:
    """Create a bootstrap home: libp2p key (0600), config.toml, optionally genesis.json.

    Prints the multiaddr to publish (the genesis 'bootstrap' list and the
    districts' [p2p] bootstrap setting).
    """
    home = home.resolve()
    with _operator_errors():
        config = BootstrapConfig(
            home=home,
            listen=listen,
            announce=announce,
            psk=psk_file.read_text().strip() if psk_file else "",
            extra_peers=extra_peers,
            follow=follow,
        )
        if config.config_file.exists() and not force:
            raise ConfigError(f"{home} is already a bootstrap home (config.toml exists; --force rewrites it)")
        peer_id, created = _prepare_home(config, genesis_file)
    from bootstrap.node import published_addrs  # noqa: PLC0415 - imports libp2p

    if not created:
        click.echo(f"kept the existing key {config.key_file}", err=True)
    for addr in published_addrs(config, peer_id):
        click.echo(addr)
    if not config.announce and "<public-ip>" in published_addrs(config, peer_id)[0]:
        click.echo(
            "hint: replace <public-ip> with the address districts reach this server at, "
            "or run init again with --force --announce /ip4/<public-ip>/tcp/<port> "
            "(or /dns4/<name>/tcp/<port>)",
            err=True,
        )
    if not config.genesis_file.exists():
        click.echo(f"next: put the chain's genesis.json in {home}, then start the node", err=True)


def _prepare_home(config: BootstrapConfig, genesis_file: Path | None) -> tuple[str, bool]:
    """Validate everything, then write the key (if new), config and genesis. Returns (peer id, created)."""
    from bootstrap.node import net_config  # noqa: PLC0415 - imports libp2p
    from p2pcity.chain.genesis import Genesis  # noqa: PLC0415
    from p2pcity.net import create_key_file, peer_id_from_key_file  # noqa: PLC0415
    from p2pcity.net.config import check_peer_id  # noqa: PLC0415

    net_config(config, "check")  # listen, announce and psk, as the network layer sees them
    for peer in config.extra_peers:
        check_peer_id(peer)
    if genesis_file is not None:
        Genesis.load(genesis_file)
    config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.key_file.parent.mkdir(mode=0o700, exist_ok=True)
    created = not config.key_file.exists()
    peer_id = create_key_file(config.key_file) if created else peer_id_from_key_file(config.key_file)
    # config.toml holds the PSK: readable by the node's user only.
    fd = os.open(config.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(config.to_toml())
    os.chmod(config.config_file, 0o600)
    if genesis_file is not None:
        shutil.copyfile(genesis_file, config.genesis_file)
    return peer_id, created


@bootstrap.command("start")
@HOME
@click.option(
    "--follow", default=None, help='"auto", "off" or a trusted node\'s API URL (overrides the config).'
)
def start(home: Path, follow: str | None) -> None:
    """Run the bootstrap node in the foreground until SIGTERM or Ctrl-C."""
    with _operator_errors():
        config = BootstrapConfig.load(home)
        if follow:
            config = dataclasses.replace(config, follow=follow)
        config.require_files()
        from bootstrap.node import run  # noqa: PLC0415 - imports libp2p

        run(config)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(argv))


def run_cli(argv: list[str] | None = None) -> int:
    """The exit code of ``python -m bootstrap ARGV``: one error line for anything a user caused."""
    from p2pcity.cli.errors import run_guarded  # noqa: PLC0415 - shared with the p2pcity CLI

    return run_guarded(bootstrap, argv, prog_name="python -m bootstrap")
