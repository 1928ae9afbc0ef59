"""What the consensus core needs from the outside world, injected as plain callables.

The core never looks inside a block's transactions: the application (in the
node: mempool + ledger; in the simulator: a toy) builds payloads and judges
them. Signature checking is injected too, so a benchmark can measure the
protocol logic without it and a simulator can share one cache of results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from p2pcity.types.block import Block

# (public key, message, signature) -> valid?  Must be pure and deterministic.
SignatureCheck = Callable[[bytes, bytes, bytes], bool]


class App(Protocol):
    """The application behind the consensus core. Every method must be deterministic."""

    def verify_block(self, block: Block, parent: Block) -> bool:
        """May an honest validator vote for ``block`` on top of ``parent``?

        Called only for a block whose header, signature, certificates and
        transaction root already check out, right before voting. In the node it
        re-executes the transactions on the parent's state and compares the
        state root; it must not depend on anything but its arguments and the
        (deterministic) state they name.
        """
        ...
