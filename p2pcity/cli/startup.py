"""What can stop ``p2pcity start`` before the node runs, each said in one line.

A port already taken, or a data directory of another chain, used to end in
a 40-85 line traceback (an exception group from trio). The ports are tried
before the node starts; errors that still come out of the node are looked
for inside exception groups and named.
"""

from __future__ import annotations

import errno
import re
import socket

from p2pcity.config import NodeConfig, parse_host_port


def check_ports(config: NodeConfig) -> str | None:
    """A one-line problem if the API or p2p listen address cannot be bound now, else None."""
    host, port = parse_host_port(config.api.listen, "api.listen")
    problem = _try_bind(host, port, f"api.listen {config.api.listen}")
    if problem is not None:
        return problem
    match = re.search(r"/ip[46]/([^/]+)/tcp/([0-9]+)", config.p2p.listen)
    if match is None:
        return None
    return _try_bind(match[1], int(match[2]), f"p2p.listen {config.p2p.listen}")


def _try_bind(host: str, port: int, what: str) -> str | None:
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{what}: the port is already in use (another node or program listens there)"
            return f"{what}: cannot listen there: {exc.strerror or exc}"
    return None


def startup_problem(exc: BaseException) -> str | None:
    """The one line for a known start-up failure inside ``exc`` (trio wraps them in groups), if any."""
    from p2pcity.store import StoreError  # noqa: PLC0415 - lazy: the store imports rocksdict

    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = startup_problem(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, StoreError):
        return f"the node's data directory cannot be used: {exc}"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"a listen address is already in use: {exc}"
    return None
