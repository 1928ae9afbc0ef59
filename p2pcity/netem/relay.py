"""The user-space link emulator: one TCP relay listener per directed link ``i -> j``.

This kernel has no ``sch_netem`` and no iptables, so delay, jitter, loss and
partitions are applied here, in one trio process (``python -m
p2pcity.netem.relay STATE_DIR``). Node ``i`` knows node ``j`` only at the
relay's listener for ``i -> j``; the relay forwards to ``j``'s real address
(unreachable from ``i``'s namespace by a blackhole route, so there is no way
around the relay).

- **Partition**: a connection on a cut link is closed at once, and every open
  one is closed when the rules change (as a real cut ends in timeouts; here the
  node sees the close sooner, which only makes reconnect attempts faster).
- **Delay and jitter**: each chunk read is delivered ``delay +- jitter`` later,
  never before the previous chunk (TCP keeps order; jitter cannot reorder).
- **Loss**: TCP does not lose bytes, it retransmits; a "lost" chunk is
  delivered after an extra retransmission timeout (200 ms, Linux's minimum RTO),
  which is what a lost segment costs the application. Loss is per chunk read,
  not per packet: a burst is one chunk, so it is a coarse model at high rates.

The relay polls ``rules.json`` and writes the generation it applied to
``applied``, so a caller can wait until a partition is in force.
"""

from __future__ import annotations

import json
import logging
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import trio

from p2pcity.netem.rules import NetemError, Rules, Shaping

log = logging.getLogger("p2pcity.netem.relay")

RTO_S = 0.2
_CHUNK = 65536
_QUEUE_CHUNKS = 256  # per direction: bounds the bytes a delayed link holds (~16 MiB)
_POLL_S = 0.05


@dataclass(frozen=True)
class Link:
    src: int
    dst: int
    listen_host: str
    listen_port: int
    target_host: str
    target_port: int

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Link:
        return cls(
            int(raw["src"]),  # type: ignore[call-overload]
            int(raw["dst"]),  # type: ignore[call-overload]
            str(raw["listen_host"]),
            int(raw["listen_port"]),  # type: ignore[call-overload]
            str(raw["target_host"]),
            int(raw["target_port"]),  # type: ignore[call-overload]
        )


class Relay:
    def __init__(self, state_dir: Path, links: list[Link], rules: Rules, seed: int | None = None) -> None:
        self.state_dir = state_dir
        self.links = links
        self.rules = rules
        self._random = random.Random(seed)
        self._open: dict[tuple[int, int], set[trio.CancelScope]] = {}

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for link in self.links:
                listeners = await trio.open_tcp_listeners(link.listen_port, host=link.listen_host)
                nursery.start_soon(trio.serve_listeners, self._handler(link), listeners)
            self._acknowledge()
            await self._watch_rules()

    async def _watch_rules(self) -> None:
        path = self.state_dir / "rules.json"
        while True:
            await trio.sleep(_POLL_S)
            try:
                rules = Rules.load(path)
            except NetemError as exc:
                log.warning("keeping the rules in force: %s", exc)
                continue
            if rules.generation != self.rules.generation:
                self.rules = rules
                self._cut_disallowed()
                self._acknowledge()
                log.info("rules %d applied (groups %s)", rules.generation, rules.to_json()["groups"])

    def _acknowledge(self) -> None:
        tmp = self.state_dir / "applied.tmp"
        tmp.write_text(str(self.rules.generation))
        tmp.replace(self.state_dir / "applied")

    def _cut_disallowed(self) -> None:
        for (i, j), scopes in self._open.items():
            if not self.rules.allowed(i, j):
                for scope in scopes:
                    scope.cancel()

    def _handler(self, link: Link):  # type: ignore[no-untyped-def]
        async def handle(inbound: trio.SocketStream) -> None:
            key = (link.src, link.dst)
            if not self.rules.allowed(*key):
                await trio.aclose_forcefully(inbound)
                return
            try:
                with trio.fail_after(5):
                    outbound = await trio.open_tcp_stream(link.target_host, link.target_port)
            except (OSError, trio.TooSlowError):
                await trio.aclose_forcefully(inbound)
                return
            with trio.CancelScope() as scope:
                self._open.setdefault(key, set()).add(scope)
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._pump, inbound, outbound, link.src, link.dst, nursery)
                        nursery.start_soon(self._pump, outbound, inbound, link.dst, link.src, nursery)
                except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass  # a reset or a close on either side ends the connection, never the relay
                finally:
                    self._open[key].discard(scope)
            await trio.aclose_forcefully(inbound)
            await trio.aclose_forcefully(outbound)

        return handle

    async def _pump(
        self, source: trio.SocketStream, sink: trio.SocketStream, i: int, j: int, nursery: trio.Nursery
    ) -> None:
        """Copy ``source`` to ``sink`` under the shaping of ``i -> j``; either side ending ends both."""
        send, receive = trio.open_memory_channel[tuple[float, bytes]](_QUEUE_CHUNKS)

        async def deliver() -> None:
            async for due, data in receive:
                await trio.sleep_until(due)
                await sink.send_all(data)

        async with trio.open_nursery() as inner:
            inner.start_soon(deliver)
            last_due = 0.0
            async with send:
                while data := await source.receive_some(_CHUNK):
                    last_due = max(last_due, trio.current_time() + self._lag(self.rules.shaping(i, j)))
                    # blocks when the link holds too much: back-pressure, as a full TCP window
                    await send.send((last_due, data))
        nursery.cancel_scope.cancel()

    def _lag(self, shaping: Shaping) -> float:
        if shaping.idle:
            return 0.0
        lag = shaping.delay_ms / 1000.0
        if shaping.jitter_ms:
            lag += self._random.uniform(-shaping.jitter_ms, shaping.jitter_ms) / 1000.0
        if shaping.loss and self._random.random() < shaping.loss:
            lag += RTO_S
        return max(0.0, lag)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state_dir = Path(argv[0])
    layout = json.loads((state_dir / "layout.json").read_text())
    links = [Link.from_json(raw) for raw in layout["links"]]
    rules = Rules.load(state_dir / "rules.json")
    relay = Relay(state_dir, links, rules, seed=layout.get("seed"))
    try:
        trio.run(relay.run)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
