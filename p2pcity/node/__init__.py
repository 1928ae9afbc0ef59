"""The district node: wires store, ledger, mempool, consensus, network and API (``service``).

``run_node(config)`` runs one node in the foreground until SIGTERM or SIGINT
and shuts down cleanly; it is what ``p2pcity start`` calls. If the node
cannot make its safety record or a commit durable (``replica.FailStop``), it
stops at once: one ``fail-stop:`` line in the log and exit code
:data:`FAIL_STOP_EXIT`, never a half-working validator.

Layers (kept by ``tests/test_layers.py``): ``service`` wires everything and
is imported by nothing here; ``driver``, ``protocols``, ``sync`` take ports
(``ports``), never the node; ``replica``, ``recovery``, ``ledger`` and
``districts`` import no trio and no libp2p.
"""

from __future__ import annotations

import logging
import os
import signal

import trio

from p2pcity.config import NodeConfig

log = logging.getLogger(__name__)
FAIL_STOP_EXIT = 3


def fail_stop_in(exc: BaseException) -> BaseException | None:
    """The FailStop inside ``exc`` (trio wraps task errors in exception groups), if any."""
    from p2pcity.node.replica import FailStop  # noqa: PLC0415

    if isinstance(exc, FailStop):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = fail_stop_in(inner)
            if found is not None:
                return found
    return None


async def serve_node(config: NodeConfig) -> None:
    from p2pcity.node.logs import setup_logging  # noqa: PLC0415 - keep `import p2pcity.node` light
    from p2pcity.node.service import Node  # noqa: PLC0415

    setup_logging(
        config.district,
        config.log.level,
        config.log_file,
        config.log.json,
        console_json=config.log.console == "json",
        max_bytes=config.log.max_bytes,
        backups=config.log.backups,
    )
    node = Node(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("received %s: shutting down", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
    log.info("stopped")


def run_node(config: NodeConfig) -> None:
    try:
        _run(config)
    except BaseException as exc:
        stop = fail_stop_in(exc)
        if stop is None:
            raise
        log.critical("fail-stop: %s", stop)
        raise SystemExit(FAIL_STOP_EXIT) from None


def _run(config: NodeConfig) -> None:
    profile = os.environ.get("P2PCITY_PROFILE")
    if not profile:
        trio.run(serve_node, config)
        return
    # For benchmarks: where does a node's CPU go? (cProfile sees the one trio thread.)
    import cProfile  # noqa: PLC0415

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        trio.run(serve_node, config)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)
