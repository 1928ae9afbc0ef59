"""The real bootstrap program as a child process, with in-process hosts that know only its address."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.net.conftest import PSK, Keys, start, start_stoppable, wait_for

from .conftest import CHAIN, READY, BootProcess, make_home, start_process, write_genesis

pytestmark = pytest.mark.slow


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "hosts")


async def test_hosts_meet_through_the_bootstrap_and_outsiders_do_not(
    nursery: trio.Nursery, keys: Keys, tmp_path: Path, processes: list[BootProcess]
) -> None:
    # 0-2 districts using rendezvous, 3 a stranger, 4 a district with the wrong PSK,
    # 5-6 districts using the DHT only (they admit only each other and the bootstrap).
    keys.make(7)
    boot = make_home(tmp_path, psk=PSK)
    write_genesis(boot.home / "genesis.json", [keys.ids[i] for i in (0, 1, 2, 4, 5, 6)], (boot.addr,))
    process = start_process(processes, boot)
    await process.wait_for_line(READY)

    started = time.perf_counter()
    common: dict[str, Any] = {"chain_id": CHAIN, "bootstrap": [boot.addr], "rendezvous": True, "dht": True}
    hosts = [await start(nursery, keys.config(i, allowed=[0, 1, 2, 4], **common)) for i in (0, 1)]
    last, last_scope = await start_stoppable(nursery, keys.config(2, allowed=[0, 1, 2, 4], **common))
    hosts.append(last)
    stranger = await start(nursery, keys.config(3, allowed=[0, 1, 2], **common))
    wrong_psk = await start(nursery, keys.config(4, allowed=[0, 1, 2], psk="a5" * 32, **common))
    dht_only = {**common, "rendezvous": False}
    dht_hosts = [await start(nursery, keys.config(i, allowed=[5, 6], **dht_only)) for i in (5, 6)]

    def full_mesh() -> bool:
        return all(b.peer_id in a.connected_peers() for a, b in itertools.permutations(hosts, 2))

    await wait_for(full_mesh, timeout=10, what="the three districts connected to each other")
    elapsed = time.perf_counter() - started
    print(f"full mesh through the bootstrap process after {elapsed:.2f} s")
    a, b = dht_hosts
    await wait_for(lambda: b.peer_id in a.connected_peers(), timeout=10, what="DHT-only hosts connected")
    print(f"DHT-only hosts connected after {time.perf_counter() - started:.2f} s")
    await trio.sleep(max(0.0, 3.0 - elapsed))  # the outsiders had as long as the districts
    for host in hosts:
        assert boot.peer_id in host.connected_peers()
    for outsider in (stranger, wrong_psk):
        assert not outsider.connected_peers(), f"{outsider.peer_id} got in"
        assert all(outsider.peer_id not in host.connected_peers() for host in hosts)

    # The periodic status line counts the districts and their registrations.
    await process.wait_for_line("status: 5/6 admitted peers connected")
    await process.wait_for_line("rendezvous: 3 registered in p2pcity/boot-city")
    assert f"refused inbound connection from {stranger.peer_id}" in process.output()

    last_scope.cancel()  # a district leaves: the bootstrap notices
    await process.wait_for_line("status: 4/6 admitted peers connected")

    assert process.stop() == 0
    output = process.output()
    assert "SIGTERM received: shutting down" in output
    assert f"bootstrap node {boot.peer_id} stopped" in output
    assert "Traceback" not in output, output


class _Validators(BaseHTTPRequestHandler):
    """``GET /validators`` answering with the server's current ``members``."""

    server: _ValidatorsServer

    def do_GET(self) -> None:
        body = json.dumps({"districts": self.server.members}).encode()
        status = 200 if self.path == "/validators" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ValidatorsServer(ThreadingHTTPServer):
    members: list[dict[str, str]]


@pytest.fixture
def api() -> Iterator[_ValidatorsServer]:
    server = _ValidatorsServer(("127.0.0.1", 0), _Validators)
    server.members = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_follow_admits_and_expels_districts_as_the_chain_changes(
    nursery: trio.Nursery, keys: Keys, tmp_path: Path, processes: list[BootProcess], api: _ValidatorsServer
) -> None:
    keys.make(2)
    boot = make_home(tmp_path, psk=PSK)
    write_genesis(boot.home / "genesis.json", [keys.ids[0]], (boot.addr,))
    founder = {"name": "district-0", "peer_id": keys.ids[0]}
    api.members = [founder]
    url = f"http://127.0.0.1:{api.server_address[1]}"
    boot.configure(follow_interval=1.0)
    process = start_process(processes, boot, "--follow", url)
    await process.wait_for_line(READY)

    newcomer = await start(nursery, keys.config(1, chain_id=CHAIN, bootstrap=[boot.addr], rendezvous=True))
    await process.wait_for_line(f"refused inbound connection from {newcomer.peer_id}")

    api.members = [founder, {"name": "newcomer", "peer_id": keys.ids[1]}]  # added on chain
    await wait_for(lambda: boot.peer_id in newcomer.connected_peers(), timeout=8, what="newcomer admitted")
    await process.wait_for_line("admission changed")
    await process.wait_for_line("rendezvous: 1 registered")

    api.members = [founder]  # removed on chain
    def expelled() -> bool:
        return boot.peer_id not in newcomer.connected_peers()

    await wait_for(expelled, timeout=8, what="newcomer expelled")
    # ...and its registration is no longer handed out.
    await process.wait_for_line("rendezvous: 0 registered", after=len(process.output()))
    assert process.stop() == 0
    assert "Traceback" not in process.output()
