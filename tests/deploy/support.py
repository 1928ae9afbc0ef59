"""Readers for the deploy/ files and a checker of ``p2pcity`` command lines against the real CLI."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from p2pcity.cli import COMMANDS, cli
from p2pcity.config import NodeConfig
from p2pcity.net.config import NetConfig

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLES = DEPLOY / "examples"
KUBERNETES = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"

API_PORT = 8700
P2P_PORT = 7100
BOOTSTRAP_PORT = 7000
HOME = "/data/p2pcity"  # the image's node home volume
P2PCITY = {"p2pcity", "/usr/local/bin/p2pcity", "/opt/p2pcity/bin/p2pcity"}
IMAGE = re.compile(r"^p2pcity:[\w.-]+$")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ">", ">>", "<"}


def tool(name: str) -> str | None:
    """A tool from the virtualenv or the PATH, or None when it is not installed."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def load_yaml(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs, f"{path} holds no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "compose.yaml")[0]


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the environment."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def net_config(config: NodeConfig, chain_id: str) -> NetConfig:
    """The network layer's own validation of a config's addresses, peer ids and psk."""
    return NetConfig(
        chain_id=chain_id,
        key_file=config.p2p_key_file,
        listen_addrs=(config.p2p.listen,),
        announce_addrs=config.p2p.announce,
        psk=config.p2p.psk or None,
        bootstrap=config.p2p.bootstrap,
        static_peers=config.p2p.static_peers,
    )


# --- the CLI ------------------------------------------------------------------


def bootstrap_cli() -> click.Group:
    """The bootstrap program's click group (``python -m bootstrap``)."""
    module = pytest.importorskip("bootstrap.cli", reason="the bootstrap program is not in the tree")
    group = module.bootstrap
    assert isinstance(group, click.Group)
    return group


def check_cli(argv: Sequence[str], root: click.Command = cli) -> click.Command:
    """Fail unless ``p2pcity ARGV`` names real (sub)commands, options, choices and required options.

    Parses like click without running anything and without touching the files
    the arguments name (they exist only inside a container or a server).
    ``root`` is another click program to check against, e.g. :func:`bootstrap_cli`.
    """
    command: click.Command = root
    args = list(argv)
    where = root.name or "p2pcity"
    while isinstance(command, click.Group):
        assert args, f"{where} needs a subcommand"
        name = args.pop(0)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"{where} has no command {name!r} (in: p2pcity {' '.join(argv)})"
        command, where = sub, f"{where} {name}"
    options = {
        opt: param
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
    }
    given: set[str | None] = set()
    positional = 0
    tokens = iter(args)
    for token in tokens:
        if not token.startswith("-"):
            positional += 1
            continue
        name, eq, value = token.partition("=")
        param = options.get(name)
        assert param is not None, f"{where} has no option {name} (in: p2pcity {' '.join(argv)})"
        given.add(param.name)
        if param.is_flag:
            continue
        if not eq:
            value = next(tokens, "")
            assert value and not value.startswith("--"), f"{where} {name} needs a value"
        if isinstance(param.type, click.Choice):
            choices = param.type.choices
            assert value in choices, f"{where} {name}: {value!r} is not one of {choices}"
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    assert positional <= len(arguments), f"{where} takes {len(arguments)} argument(s), got {positional}"
    missing = [p.opts[0] for p in command.params if isinstance(p, click.Option) and p.required]
    missing = [opt for opt in missing if options[opt].name not in given]
    assert not missing, f"{where} is missing required {missing} (in: p2pcity {' '.join(argv)})"
    return command


def option(argv: Sequence[str], name: str) -> str:
    """The value of ``name`` in an argument list."""
    index = list(argv).index(name)
    return argv[index + 1]


def _shell_lines(script: str) -> Iterator[list[str]]:
    for line in script.replace("\\\n", " ").splitlines():
        try:
            yield shlex.split(line, comments=True)
        except ValueError:
            continue


def _until_operator(tokens: list[str]) -> list[str]:
    end = next((j for j, t in enumerate(tokens) if t in SHELL_OPERATORS), len(tokens))
    return tokens[:end]


def shell_invocations(script: str) -> Iterator[list[str]]:
    """The argument lists of every ``p2pcity`` command in shell text (images run as ``p2pcity``)."""
    commands = set(COMMANDS) - {"bootstrap"}  # bootstrap lines are checked against bootstrap_cli
    for tokens in _shell_lines(script):
        for i, token in enumerate(tokens[:-1]):
            runs_cli = token in P2PCITY or (IMAGE.match(token) and "--entrypoint" not in tokens)
            if runs_cli and tokens[i + 1] in commands:
                yield _until_operator(tokens[i + 1 :])


def bootstrap_invocations(script: str) -> Iterator[list[str]]:
    """The argument lists of every ``python -m bootstrap`` command in shell text."""
    for tokens in _shell_lines(script):
        for i in range(len(tokens) - 1):
            if tokens[i : i + 2] == ["-m", "bootstrap"]:
                yield _until_operator(tokens[i + 2 :])


def markdown_shell(text: str) -> str:
    return "\n".join(re.findall(r"```sh\n(.*?)```", text, re.S))


# --- the Dockerfile -------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, rest = (pending + line).partition(" ")
        out.append((instruction.upper(), rest.strip()))
        pending = ""
    assert not pending, f"{path} ends inside a continued line"
    return out


def exec_form(rest: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD; shell form is refused."""
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value
