"""``p2pcity watch`` against a real node, and which commands start without importing libp2p."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import solo_node
from tests.cli.conftest import CliRun


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from solo_node(tmp_path_factory.mktemp("watch-node"))


@pytest.mark.slow
def test_watch_prints_one_line_per_event_and_resumes_after_its_last_cursor(
    p2pcity: CliRun, node_url: str
) -> None:
    first = p2pcity("watch", "--node", node_url, "--after", "0:0", "--count", "3", check=True, timeout=120)
    lines = first.stdout.splitlines()
    assert [line.split()[:4] for line in lines] == [[f"{h}:0", "block", "height", str(h)] for h in (1, 2, 3)]
    again = p2pcity(
        "watch", "--node", node_url, "--after", lines[-1].split()[0], "--count", "2", "--json", check=True
    )
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert [(e["cursor"], e["event"], e["height"]) for e in events] == [
        ("4:0", "block", 4),
        ("5:0", "block", 5),
    ]


@pytest.mark.slow
def test_watch_with_a_bad_cursor_or_no_node_is_one_line(p2pcity: CliRun, node_url: str) -> None:
    bad = p2pcity("watch", "--node", node_url, "--after", "yesterday")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "cursor" in bad.stderr
    gone = p2pcity("watch", "--node", "http://127.0.0.1:9", "--count", "1", "--retries", "1", timeout=120)
    assert gone.returncode == 1 and gone.stderr.startswith("error: ") and gone.stderr.count("\n") == 1


# What each command may import: none of these needs the network stack, and those that only read
# or print need no httpx either (cli/reads.py GETs with the standard library). What each one
# costs in CPU is measured by bench/bench_startup.py.
NO_LIBP2P = [
    ["--version"],
    ["--help"],
    ["watch", "--help"],
    ["record", "get", "--help"],
    ["record", "get", "land/lot-7", "--node", "http://127.0.0.1:9"],  # runs until it cannot connect
    ["keys", "new", "--out", "probe.key"],
    ["testnet", "status", "--help"],
    ["genesis", "show", "--help"],
]
NO_HTTPX = {
    "--version",
    "--help",
    "record get land/lot-7 --node http://127.0.0.1:9",
    "keys new --out probe.key",
}
PROBE = (
    "import runpy, sys\n"
    "sys.argv = ['p2pcity', *{argv!r}]\n"
    "try:\n    runpy.run_module('p2pcity', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "{then}"
    "loaded = lambda name: any(m == name or m.startswith(name + '.') for m in sys.modules)\n"
    "print(' '.join(name for name in ('libp2p', 'httpx') if loaded(name)) or 'CLEAN')\n"
)


def _probe(argv: list[str], cwd: Path, then: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, then=then)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", NO_LIBP2P, ids=" ".join)
def test_commands_that_need_no_network_do_not_import_libp2p(argv: list[str], tmp_path: Path) -> None:
    loaded = _probe(argv, tmp_path).split()
    assert "libp2p" not in loaded
    if " ".join(argv) in NO_HTTPX:
        assert "httpx" not in loaded


def test_the_probe_sees_libp2p_and_httpx_when_a_command_does_import_them(tmp_path: Path) -> None:
    # Control: the same probe, after code that loads the network stack and the HTTP client.
    then = "import p2pcity.node.service, p2pcity.client\n"
    assert _probe(["--version"], tmp_path, then).split() == ["libp2p", "httpx"]
