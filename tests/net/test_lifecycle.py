"""Starting and stopping: listen failures are errors, calls before start are refused."""

from __future__ import annotations

import pytest
import trio

from p2pcity.net import NetError, Network, NotRunningError

from .conftest import Keys, start


async def test_port_in_use_is_an_error(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    first = await start(nursery, keys.config(0))
    taken = first.listen_addrs[0].split("/p2p/")[0]
    second = Network(keys.config(1, listen_addrs=[taken]))
    with pytest.raises(NetError, match="cannot listen"):
        await second.run()


async def test_address_not_local_is_an_error(keys: Keys) -> None:
    keys.make(1)
    net = Network(keys.config(0, listen_addrs=["/ip4/192.0.2.7/tcp/0"]))  # TEST-NET-1
    with pytest.raises(NetError, match="cannot listen"):
        await net.run()


async def test_calls_before_start_are_refused(keys: Keys) -> None:
    keys.make(2)
    net = Network(keys.config(0))
    with pytest.raises(NotRunningError):
        await net.publish("txs", b"early")
    with pytest.raises(NotRunningError):
        await net.request(keys.ids[1], "echo", b"early")


async def test_allow_list_can_change_before_start(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(3)
    net = Network(keys.config(0, allowed=[1]))
    assert net.allowed_peers() == {keys.ids[1]}
    net.set_allowed_peers([keys.ids[2]])
    assert net.allowed_peers() == {keys.ids[2]}
    await nursery.start(net.run)
    net.set_allowed_peers([keys.ids[1], keys.ids[2]])
    assert net.allowed_peers() == {keys.ids[1], keys.ids[2]}
