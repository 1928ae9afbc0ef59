"""The district node: wires store, ledger, mempool, consensus, network and API (``service``).

``run_node(config)`` runs one node in the foreground until SIGTERM or SIGINT
and shuts down cleanly; it is what ``p2pcity start`` calls.
"""

from __future__ import annotations

import logging
import os
import signal

import trio

from p2pcity.config import NodeConfig

log = logging.getLogger(__name__)


async def serve_node(config: NodeConfig) -> None:
    from p2pcity.node.logs import setup_logging  # noqa: PLC0415 - keep `import p2pcity.node` light
    from p2pcity.node.service import Node  # noqa: PLC0415

    setup_logging(config.district, config.log.level, config.log_file, config.log.json)
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
