"""Network emulation for testnets: namespaces, a bridge, and a relay that partitions and shapes links.

Owns: network namespaces and veths of a testnet (``namespaces``), the rules of
partitions, delay, jitter, loss and clock skew (``rules``, pure), the user-space
TCP relay that applies them (``relay``) and the per-testnet state tying them
together (``emulation``). Used by ``p2pcity.testnet`` and the ``p2pcity testnet
partition|heal|netem`` commands; never by a node: a node does not know it runs
under emulation. Must not import the node, consensus or net layers.
"""

from p2pcity.netem.emulation import Emulation
from p2pcity.netem.rules import NetemError, Rules, Shaping

__all__ = ["Emulation", "NetemError", "Rules", "Shaping"]
