"""The signed-peer-record memo: checked once per (peer, record), never trusting what failed."""

from __future__ import annotations

from typing import Any

from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from p2pcity.net.gossip import _SignedRecordMemo

PEER = ID(b"\x00\x24" + bytes(36))
OTHER = ID(b"\x00\x24" + b"\x01" * 36)


class Checker:
    """Stands in for py-libp2p's check: counts calls, accepts records starting with b"ok"."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, msg: rpc_pb2.RPC, host: Any, peer: ID) -> bool:
        self.calls += 1
        return bool(msg.senderRecord.startswith(b"ok"))


def rpc(record: bytes | None) -> rpc_pb2.RPC:
    msg = rpc_pb2.RPC()
    if record is not None:
        msg.senderRecord = record
    return msg


def test_the_same_record_from_the_same_peer_is_checked_once() -> None:
    check = Checker()
    memo = _SignedRecordMemo(check)
    for _ in range(5):
        assert memo(rpc(b"ok record"), None, PEER)
    assert check.calls == 1 and memo.hits == 4
    # Another peer presenting the same bytes, or the peer a new record: checked in full.
    assert memo(rpc(b"ok record"), None, OTHER)
    assert memo(rpc(b"ok new addresses"), None, PEER)
    assert check.calls == 3
    assert memo(rpc(None), None, PEER)  # no record: nothing to check
    assert check.calls == 3


def test_a_record_that_fails_is_checked_every_time() -> None:
    check = Checker()
    memo = _SignedRecordMemo(check)
    for _ in range(3):
        assert not memo(rpc(b"forged"), None, PEER)
    assert check.calls == 3 and memo.hits == 0


def test_entries_expire_so_the_peerstore_is_refreshed(monkeypatch: Any) -> None:
    check = Checker()
    memo = _SignedRecordMemo(check)
    clock = [1000.0]
    monkeypatch.setattr("p2pcity.net.gossip.time.monotonic", lambda: clock[0])
    assert memo(rpc(b"ok"), None, PEER)
    clock[0] += memo.TTL_S + 1
    assert memo(rpc(b"ok"), None, PEER)
    assert check.calls == 2
