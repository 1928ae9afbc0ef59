"""The README's hand-built 4-district network: exactly its commands, run as a user would, commit blocks.

The commands are read from the README (between the ``hand-built`` markers),
so the procedure cannot drift from what is tested. Only what a shared machine
forces is changed: the fixed ports become free ones, ``city/`` a temporary
directory, ``p2pcity`` and ``python3`` this interpreter. ``NAME=$(...)`` lines
set a variable from the command's output; a trailing ``&`` starts the command
in the background (the nodes), as the shell would.

The full run is soak-marked (four nodes started by hand take minutes on two
loaded cores): ``.venv/bin/python -m pytest -m soak tests/cli/test_hand_built.py``.
Found with it (see the README): on first start such a network stayed at view
1 in every try here, while the same homes started by ``testnet up`` commit.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from p2pcity.testnet import free_port

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
MAX_COMMANDS = 10


def procedure() -> list[str]:
    text = README.read_text()
    found = re.search(
        r"<!-- hand-built:begin[^>]*-->\s*```sh\n(.*?)```\s*<!-- hand-built:end -->", text, re.S
    )
    assert found, "the README has no hand-built procedure between its markers"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in found[1].splitlines()]
    return [line for line in lines if line]


def localise(line: str, city: Path, ports: dict[str, str]) -> str:
    line = re.sub(r"\b(710[1-4]|870[1-4])\b", lambda m: ports.setdefault(m[0], str(free_port())), line)
    return line.replace("city/", f"{city}/")


def argv_of(words: list[str]) -> list[str]:
    if words[0] == "p2pcity":
        return [sys.executable, "-m", "p2pcity", *words[1:]]
    if words[0] == "python3":
        return [sys.executable, *words[1:]]
    raise AssertionError(f"the procedure runs {words[0]!r}; this test knows p2pcity and python3 only")


def test_the_readme_procedure_has_at_most_ten_commands() -> None:
    commands = procedure()
    assert 0 < len(commands) <= MAX_COMMANDS, commands
    assert sum(c.startswith("p2pcity start") for c in commands) == 4  # four districts


@pytest.mark.soak  # four node starts: minutes on a loaded CI machine. Run with -m soak (see docstring).
def test_the_readme_procedure_builds_a_committing_four_district_chain(tmp_path: Path) -> None:
    city = tmp_path / "city"
    ports: dict[str, str] = {}
    variables: dict[str, str] = {}
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        for written in procedure():
            line = localise(written, city, ports)
            assignment = re.fullmatch(r"([A-Z_]+)=\$\((.*)\)", line)
            command = assignment[2] if assignment else line
            background = command.endswith("&")
            words = [
                variables.get(w[1:], w) if w.startswith("$") else w for w in shlex.split(command.rstrip("&"))
            ]
            if background:
                nodes.append(
                    subprocess.Popen(argv_of(words), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
                continue
            done = subprocess.run(
                argv_of(words), capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path
            )
            assert done.returncode == 0, f"{line}: {done.stderr}"
            if assignment:
                variables[assignment[1]] = done.stdout.strip()
        apis = [f"http://127.0.0.1:{ports[p]}" for p in ("8701", "8702", "8703", "8704")]
        heights = _wait_for_commits(apis, nodes, target=3)
        # One chain: every node holds the same block at a height all four committed.
        common = min(heights)
        hashes = {httpx.get(f"{api}/blocks/{common}", timeout=10).json()["hash"] for api in apis}
        assert len(hashes) == 1, hashes
        status = httpx.get(apis[1] + "/status", timeout=10).json()
        assert status["chain_id"] == "riverside" and status["validators"] == 4
    finally:
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(timeout=30)


def _wait_for_commits(apis: list[str], nodes: list[subprocess.Popen[bytes]], target: int) -> list[int]:
    deadline = time.monotonic() + 240  # generous: four nodes start on two loaded cores
    heights = [0] * len(apis)
    while True:
        for i, api in enumerate(apis):
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                heights[i] = int(httpx.get(api + "/status", timeout=5).json()["height"])
        if min(heights) >= target:
            return heights
        dead = [n.args for n in nodes if n.poll() is not None]
        assert not dead, f"nodes exited: {dead}"
        assert time.monotonic() < deadline, f"heights {heights} after 240 s"
        time.sleep(0.5)


def test_genesis_new_from_homes_writes_into_each_and_refuses_a_home_of_a_chain(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "p2pcity"]
    homes = [tmp_path / name for name in ("north", "south")]
    for home in homes:
        p2p = f"/ip4/127.0.0.1/tcp/{free_port()}"
        init = [*cli, "init", "--home", str(home), "--district", home.name, "--p2p", p2p]
        subprocess.run(init, check=True, capture_output=True, timeout=180)
    args = [*cli, "genesis", "new", "--chain-id", "riverside"]
    made = subprocess.run(
        [*args, "--home", str(homes[0]), "--home", str(homes[1])],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert (homes[0] / "genesis.json").read_text() == (homes[1] / "genesis.json").read_text()
    again = subprocess.run(
        [*args, "--home", str(homes[0])], capture_output=True, text=True, timeout=180, check=False
    )
    assert again.returncode == 1 and again.stderr.strip().endswith("a home belongs to one chain")
    bare = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    assert bare.returncode == 1 and "--district CARD or --home DIR" in bare.stderr
