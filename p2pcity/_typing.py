"""Typing shims shared by the trio code (no imports of ours: any layer may use it)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # py-libp2p 0.8.1 (and multiaddr) depend on trio-typing, whose trio-stubs
    # shadow trio 0.35's own annotations for mypy; those stubs have no
    # trio.TaskStatus and type Nursery.start against trio_typing.TaskStatus.
    from trio_typing import TaskStatus
else:
    from trio import TaskStatus

__all__ = ["TaskStatus"]
