"""Who is who on the chain, read purely from committed state: the node's :class:`ValidatorView`.

``Districts.of(state)`` is a snapshot; the node takes a new one after each
commit. Nothing here talks to the network: the network layer is told the
allowed peers by the node, which owns both.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pcity.chain import queries
from p2pcity.chain.state import StateView
from p2pcity.types.tx import District


@dataclass(frozen=True, slots=True)
class Districts:
    by_account: dict[bytes, District]
    by_peer: dict[str, bytes]  # peer id -> account, for districts that named their peer
    validator_keys: tuple[bytes, ...]
    version: int

    @classmethod
    def of(cls, state: StateView) -> Districts:
        entries = queries.districts(state)
        current = queries.validator_set(state)
        return cls(
            by_account={e.district.account: e.district for e in entries},
            by_peer={e.district.peer_id: e.district.account for e in entries if e.district.peer_id},
            validator_keys=tuple(current.validators),
            version=current.version,
        )

    def validators(self) -> tuple[bytes, ...]:
        return self.validator_keys

    def is_validator(self, account: bytes) -> bool:
        return account in self.validator_keys

    def known_peers(self) -> set[str]:
        return set(self.by_peer)

    def validator_peers(self, me: bytes) -> list[str]:
        return [
            d.peer_id
            for a, d in self.by_account.items()
            if a in self.validator_keys and a != me and d.peer_id
        ]

    def peer_of(self, account: bytes) -> str | None:
        district = self.by_account.get(account)
        return district.peer_id if district and district.peer_id else None

    def account_of(self, peer: str) -> bytes | None:
        """The validator account behind a peer id; None for observers and strangers."""
        account = self.by_peer.get(peer)
        return account if account is not None and account in self.validator_keys else None

    def allowed_peers(self) -> list[str]:
        return [d.peer_id for d in self.by_account.values() if d.peer_id]
