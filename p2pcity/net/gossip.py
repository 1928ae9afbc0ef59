"""Gossip: gossipsub configured for a handful of validators, with our validator hook.

Choices (each measured in shared/research/libp2p-0.8.1-probe.md):
- advertise only /meshsub/1.1.0 and /floodsub/1.0.0: py-libp2p 0.8.1's v1.2
  sends an IDONTWANT to every mesh peer for every message, halving throughput;
- heartbeat 1 s (the library default is 120 s);
- the library's spam protection is off: it caps every (forwarder, topic) at
  10 msg/s *including our own publishes* and silently drops the rest;
- adaptive gossip and "eclipse protection" (IP diversity) off: a permissioned
  set of validators, often several per subnet, needs neither, and adaptation
  would change the heartbeat behind our back;
- message id = SHA-256 of topic, origin, sequence number and data: one id per
  publish, so a relayed message is delivered once, but a message published
  again (a consensus timeout re-sent on every local timer) is a new message.
  py-libp2p 0.8.1 checks its seen-cache (120 s) even for local publishes: with
  a content-addressed id it silently dropped every re-send of the same bytes
  at the publisher, so after a partition healed, the timeouts and TCs that
  would regroup the views never left the node. The same payload published by
  two origins (a TC formed by several validators) now arrives twice; the
  consumer drops the second copy as stale;
- scoring counts only what *our* validators reject (see `_RejectScorer`);
- a peer's signed peer record, attached by py-libp2p to every RPC, is verified
  once per peer and record, not on every RPC (see `_SignedRecordMemo`).

Delivery: each subscription is drained by a task into a bounded channel of
ours; when the application falls behind, new messages are dropped and counted.
Messages we publish are not delivered back to us. py-libp2p replays recently
cached messages to newly connected peers, and a restarted peer has forgotten
what it saw, so applications must tolerate duplicates.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from google.protobuf.message import DecodeError
from libp2p.abc import IHost, INetStream
from libp2p.peer.id import ID
from libp2p.pubsub import floodsub
from libp2p.pubsub import gossipsub as gossipsub_module
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import PeerScorer, ScoreParams, TopicScoreParams

from p2pcity._typing import TaskStatus
from p2pcity.net.config import NetConfig
from p2pcity.net.errors import ConfigError
from p2pcity.net.gate import AllowList
from p2pcity.net.logs import power_of_two

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    """Outcome of a gossip validator (as in the Ethereum consensus specs)."""

    ACCEPT = "accept"  # deliver and forward
    IGNORE = "ignore"  # drop quietly: stale, duplicate, not checkable yet
    REJECT = "reject"  # drop and penalise the peer that forwarded it


Validator = Callable[[str, bytes, str], Verdict]
"""``validate(topic, data, from_peer) -> Verdict``; synchronous, runs before
forwarding. ``from_peer`` is the signed origin; it is our own peer id for
messages we publish (those are checked too)."""


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    data: bytes
    from_peer: str
    """Origin (signature-checked), not the neighbour that forwarded it."""
    msg_id: bytes


class _RejectScorer(PeerScorer):
    """Counts invalid messages only when our validator said REJECT.

    py-libp2p 0.8.1 penalises the forwarder for every failed validation,
    including IGNORE-worthy ones, cache hits, and our own local publishes
    (which can end up blocking our own messages). We disable that path and
    feed P4 ourselves from the validator wrapper.
    """

    def on_invalid_message(self, peer: ID, topic: str) -> None:
        return None

    def record_reject(self, peer: ID, topic: str) -> None:
        super().on_invalid_message(peer, topic)


def _score_params() -> ScoreParams:
    # -10 per reject, decaying by 1 % per heartbeat (half-life ~70 s): five
    # recent rejects stop us accepting the peer's messages, eight graylist it.
    return ScoreParams(
        p4_invalid_messages=TopicScoreParams(weight=10.0, cap=100.0, decay=0.99),
        publish_threshold=-50.0,
        gossip_threshold=-30.0,
        graylist_threshold=-80.0,
    )


def message_id(msg: rpc_pb2.Message) -> bytes:
    # py-libp2p 0.8.1: the seen-cache also filters our own publishes, so the id must differ
    # per publish (origin and sequence number), not only per payload.
    topics = "\n".join(msg.topicIDs).encode()
    head = b"%d:%b%d:%b" % (len(msg.from_id), msg.from_id, len(msg.seqno), msg.seqno)
    return hashlib.sha256(topics + b"\0" + head + msg.data).digest()


class _Pubsub(Pubsub):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_locks: weakref.WeakKeyDictionary[INetStream, trio.Lock] = weakref.WeakKeyDictionary()

    # py-libp2p 0.8.1: three tasks write RPCs to a peer's pubsub stream (the per-peer queue,
    # gossipsub's flush of pending messages and its replay of recent ones to a new peer), and
    # Yamux's ``write`` takes its lock per 64 KiB frame, not per call: two RPCs over a frame
    # interleave, and the peer reads garbage (right after a full-cluster restart, with big
    # transactions in flight, that ended a node in CI). A write also stopped halfway (its window
    # wait timed out, or it was cancelled) leaves half an RPC that the next one is read into.
    # So one RPC at a time per stream, and a stream whose RPC was cut is reset: the peer sees a
    # reset stream, never a torn message.
    async def write_msg(self, stream: INetStream, rpc_msg: rpc_pb2.RPC) -> bool:
        lock = self._write_locks.setdefault(stream, trio.Lock())
        async with lock:
            try:
                return await super().write_msg(stream, rpc_msg)
            except BaseException:
                with trio.CancelScope(shield=True), trio.move_on_after(1.0), contextlib.suppress(Exception):
                    await stream.reset()
                raise

    # py-libp2p 0.8.1: ``_teardown_if_connected`` (run for each peer we blacklist: a district
    # removed on chain) awaits the peer's stream reset, then ``del self.peers[peer_id]``; the
    # dead-peer handler removes the entry meanwhile, the del raises KeyError, the task error
    # takes down the Swarm's nursery and the whole node exits (seen on a live key rotation).
    # The same teardown, tolerating the entry being gone already.
    async def _teardown_if_connected(self, peer_id: ID) -> None:
        stream = self.peers.get(peer_id)
        if stream is not None:
            with contextlib.suppress(Exception):  # as upstream: a failing reset still tears down
                await stream.reset()
            self.peers.pop(peer_id, None)
        self._forget_all_subscriptions(peer_id)

    # py-libp2p 0.8.1: ``continuously_read_stream`` parses each inbound RPC without catching
    # protobuf's DecodeError, and ``stream_handler`` catches only stream and varint errors, so
    # one RPC that does not decode ended the connection's nursery, the Swarm's and the node
    # (a registry node died so in CI right after a full-cluster restart). The peer's stream is
    # reset and its connection closed: both sides then drop its pubsub state, and the
    # Reconnector dials again, so an honest peer whose stream broke comes back whole.
    async def stream_handler(self, stream: INetStream) -> None:
        try:
            await super().stream_handler(stream)
        except DecodeError as exc:
            peer_id = stream.muxed_conn.peer_id
            log.warning(
                "peer %s sent a pubsub RPC that does not decode (%s); closing its connection", peer_id, exc
            )
            with contextlib.suppress(Exception):
                await stream.reset()
            # Not awaited here: closing the connection cancels this handler's own task.
            self.manager.run_task(self._close_connection, peer_id)

    async def _close_connection(self, peer_id: ID) -> None:
        with contextlib.suppress(Exception):
            await self.host.get_network().close_peer(peer_id)


class _SignedRecordMemo:
    """Checks each peer's signed peer record once, not on every RPC that carries it.

    py-libp2p 0.8.1 attaches the sender's signed peer record to *every* pubsub RPC
    and the receiver decodes it, verifies its signature and rewrites the peerstore
    each time (about 20% of a node's gossip CPU in shared/research, B13). A peer
    sends the same bytes until its addresses change, so an RPC whose record equals
    the one already accepted from that peer is accepted without the work. Entries
    expire after ``TTL_S`` so the peerstore's record (2 h TTL) stays refreshed; a
    new or different record is checked in full, and one that fails is not cached.
    """

    TTL_S = 600.0
    LIMIT = 4096

    def __init__(self, check: Callable[[rpc_pb2.RPC, IHost, ID], bool]) -> None:
        self._check = check
        self._accepted: dict[tuple[bytes, bytes], float] = {}
        self.hits = 0

    def __call__(self, msg: rpc_pb2.RPC, host: IHost, peer_id: ID) -> bool:
        if not msg.HasField("senderRecord"):
            return True
        key = (peer_id.to_bytes(), msg.senderRecord)
        now = time.monotonic()
        if self._accepted.get(key, 0.0) > now:
            self.hits += 1
            return True
        if not self._check(msg, host, peer_id):
            return False
        if len(self._accepted) >= self.LIMIT:
            self._accepted.clear()
        self._accepted[key] = now + self.TTL_S
        return True


_RECORD_HOOK = "maybe_consume_signed_record"


def _memoise_signed_records() -> _SignedRecordMemo:
    # py-libp2p 0.8.1: both modules call their own imported name for every inbound RPC.
    current = getattr(pubsub_module, _RECORD_HOOK)
    if isinstance(current, _SignedRecordMemo):
        return current
    memo = _SignedRecordMemo(current)
    for module in (pubsub_module, gossipsub_module):
        setattr(module, _RECORD_HOOK, memo)
    return memo


@dataclass
class _Topic:
    name: str
    topic_id: str
    send: trio.MemorySendChannel[GossipMessage]
    dropped: int = 0
    active: bool = False


class Gossip:
    def __init__(self, host: IHost, config: NetConfig, allow: AllowList) -> None:
        self._config = config
        self._allow = allow
        self._self_id = host.get_id()
        self.records = _memoise_signed_records()
        params = _score_params()
        self.router = GossipSub(
            protocols=[PROTOCOL_ID_V11, floodsub.PROTOCOL_ID],
            degree=config.gossip_degree,
            degree_low=config.gossip_degree_low,
            degree_high=config.gossip_degree_high,
            heartbeat_interval=config.heartbeat_interval,
            score_params=params,
            spam_protection_enabled=False,
            adaptive_gossip_enabled=False,
            eclipse_protection_enabled=False,
        )
        self._scorer = _RejectScorer(params)
        self.router.scorer = self._scorer
        self.pubsub = _Pubsub(host, self.router, msg_id_constructor=message_id)
        self._topics: dict[str, _Topic] = {}
        self._nursery: trio.Nursery | None = None
        self.rejected = 0
        self.ignored = 0

    def subscribe(
        self, name: str, validator: Validator, queue_size: int | None = None
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        if name in self._topics:
            raise ConfigError(f"already subscribed to {name!r}")
        topic_id = self._config.topic_id(name)
        send, receive = trio.open_memory_channel[GossipMessage](queue_size or self._config.gossip_queue_size)
        topic = _Topic(name, topic_id, send)
        self._topics[name] = topic
        self.pubsub.set_topic_validator(topic_id, self._wrap(name, validator), False)
        if self._nursery is not None:
            self._nursery.start_soon(self._drain, topic)
        return receive

    async def publish(self, name: str, data: bytes) -> None:
        await self.pubsub.publish(self._config.topic_id(name), data)

    def blacklist(self, peers: frozenset[str], allowed: frozenset[str]) -> None:
        """Blacklist peers that lost admission; lift it for peers admitted again."""
        for peer in peers:
            if self._nursery is not None:  # also tears down the peer's pubsub stream
                self.pubsub.add_to_blacklist(ID.from_base58(peer))
            else:  # add_to_blacklist needs the running service
                self.pubsub.blacklisted_peers.add(ID.from_base58(peer))
        for blocked in self.pubsub.get_blacklisted_peers():
            if blocked.to_base58() in allowed:
                self.pubsub.remove_from_blacklist(blocked)

    def score(self, peer: str) -> float:
        topics = [topic.topic_id for topic in self._topics.values()]
        return float(self._scorer.score(ID.from_base58(peer), topics))

    def stats(self) -> dict[str, int]:
        counts = {"gossip_rejected": self.rejected, "gossip_ignored": self.ignored}
        for topic in self._topics.values():
            # Messages dropped because the application did not keep up.
            counts[f"gossip_dropped_{topic.name}"] = topic.dropped
        return counts

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drain subscriptions until cancelled (pubsub services run in Network)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for topic in self._topics.values():
                nursery.start_soon(self._drain, topic)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
                for topic in self._topics.values():
                    topic.active = False

    async def _drain(self, topic: _Topic) -> None:
        if topic.active:
            return
        topic.active = True
        subscription = await self.pubsub.subscribe(topic.topic_id)
        async for msg in subscription:
            origin = ID(msg.from_id)
            if origin == self._self_id:
                continue
            message = GossipMessage(topic.name, msg.data, origin.to_base58(), message_id(msg))
            try:
                topic.send.send_nowait(message)
            except trio.WouldBlock:
                topic.dropped += 1
                if power_of_two(topic.dropped):
                    log.warning("gossip %s: consumer too slow, %d dropped", topic.name, topic.dropped)
            except trio.BrokenResourceError:
                log.debug("gossip %s: receiver closed, unsubscribing", topic.name)
                del self._topics[topic.name]
                self.pubsub.remove_topic_validator(topic.topic_id)
                await self.pubsub.unsubscribe(topic.topic_id)
                return

    def _wrap(self, name: str, validator: Validator) -> Callable[[ID, rpc_pb2.Message], bool]:
        topic_id = self._config.topic_id(name)

        def check(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            verdict = self._judge(name, validator, msg)
            if verdict is Verdict.ACCEPT:
                return True
            if forwarder == self._self_id:
                # py-libp2p 0.8.1 drops a local publish that fails validation
                # without telling the publisher; at least say so.
                log.warning(
                    "gossip %s: our own message was %s by our validator; not sent", name, verdict.value
                )
            elif verdict is Verdict.REJECT:
                self.rejected += 1
                self._scorer.record_reject(forwarder, topic_id)
                log.info("gossip %s: rejected a message forwarded by %s", name, forwarder)
            else:
                self.ignored += 1
            return False

        return check

    def _judge(self, name: str, validator: Validator, msg: rpc_pb2.Message) -> Verdict:
        # Rule: a message names exactly one topic.
        if len(msg.topicIDs) != 1:
            return Verdict.REJECT
        # Rule: bounded size, checked before the application decodes anything.
        if len(msg.data) > self._config.max_gossip_size:
            return Verdict.REJECT
        origin = ID(msg.from_id)
        # Rule: the origin is admitted. An honest neighbour may still relay a
        # peer we just removed, so this is IGNORE, not REJECT.
        if origin not in self._allow:
            return Verdict.IGNORE
        try:
            verdict: object = validator(name, msg.data, origin.to_base58())
        except Exception:
            log.exception("gossip %s: validator raised; ignoring the message", name)
            return Verdict.IGNORE
        if not isinstance(verdict, Verdict):
            log.error("gossip %s: validator returned %r, not a Verdict", name, verdict)
            return Verdict.IGNORE
        return verdict
