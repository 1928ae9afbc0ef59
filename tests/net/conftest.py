"""Builders for tests of p2pcity.net: real hosts on 127.0.0.1, ports chosen by the OS."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import trio

from p2pcity._typing import TaskStatus
from p2pcity.net import NetConfig, Network, Verdict, create_key_file

PSK = "5a" * 32
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


@dataclasses.dataclass
class Keys:
    """Key files created up front, so allow-lists can name every peer."""

    tmp_path: Path
    files: list[Path] = dataclasses.field(default_factory=list)
    ids: list[str] = dataclasses.field(default_factory=list)

    def make(self, n: int) -> list[int]:
        first = len(self.files)
        for index in range(first, first + n):
            path = self.tmp_path / f"node{index}" / "p2p.key"
            self.ids.append(create_key_file(path))
            self.files.append(path)
        return list(range(first, first + n))

    def config(self, index: int, allowed: Iterable[int] | None = None, **overrides: Any) -> NetConfig:
        """Config for node ``index``; by default every key made so far is allowed."""
        peers = range(len(self.ids)) if allowed is None else allowed
        fields: dict[str, Any] = {
            "chain_id": "testchain",
            "key_file": self.files[index],
            "listen_addrs": [LOOPBACK],
            "psk": PSK,
            "allowed_peers": frozenset(self.ids[i] for i in peers if i != index),
            "rendezvous": False,
            "dial_timeout": 2.0,
            "reconnect_max_backoff": 2.0,
        }
        fields.update(overrides)
        return NetConfig(**fields)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


async def start(nursery: trio.Nursery, config: NetConfig) -> Network:
    net = Network(config)
    await nursery.start(net.run)
    return net


async def start_stoppable(nursery: trio.Nursery, config: NetConfig) -> tuple[Network, trio.CancelScope]:
    """Start a network that the test can stop (cancel) on its own."""
    net = Network(config)
    scope = trio.CancelScope()

    async def run(task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await net.run(task_status=task_status)

    await nursery.start(run)
    return net, scope


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)
    assert predicate(), what


async def link(a: Network, b: Network, timeout: float = 5.0) -> None:
    """Tell ``a`` where ``b`` is and wait until both see the connection."""
    a.add_addresses(b.peer_id, b.listen_addrs)
    await wait_for(
        lambda: b.peer_id in a.connected_peers() and a.peer_id in b.connected_peers(),
        timeout,
        f"{a.peer_id} <-> {b.peer_id}",
    )


def accept_all(topic: str, data: bytes, peer: str) -> Verdict:
    return Verdict.ACCEPT
