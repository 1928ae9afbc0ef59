"""Signing and submitting a sharing transaction through a node: what every workflow shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.types.tx import Transaction


@dataclass(frozen=True)
class Submitted:
    id: bytes  # the dataset or grant the transaction creates / names
    tx: dict[str, Any]  # the node's answer: committed (with receipt) or pending
    # A put that found the file already put by this owner (the journal's index) and stored nothing.
    repeated: bool = False


def chain_id(client: Client) -> str:
    return str(client.status()["chain_id"])


def send(client: Client, identity: Identity, body: Any, wait: bool) -> tuple[Transaction, dict[str, Any]]:
    """Sign ``body`` with the account's next nonce and submit it (``Client.send``)."""
    chain = chain_id(client)
    made: list[Transaction] = []

    def make(nonce: int) -> Transaction:
        made.append(Transaction.create(identity.signer, chain, nonce, body))
        return made[-1]

    result = client.send(identity, make, wait)
    return made[0], result
