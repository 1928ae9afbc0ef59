"""Validator-set changes as files an operator passes around: propose, approve offline, submit.

A *change file* (JSON) holds one or more ``district.change`` bodies, in the
order they must commit, each naming the validator-set version it applies to,
and the approvals collected so far::

    {"chain_id": "city", "changes": [
        {"action": "add", "set_version": 3,
         "district": {"name": ..., "account": ..., "pre_key": ..., "peer_id": ...,
                      "role": ..., "addrs": [...]},
         "approvals": [{"signer": "<hex>", "signature": "<hex>"}]}]}

- :func:`propose` writes it from the current set (read from any node) and a
  district card (``district.json`` of the new node's home): add a district,
  update one (promote an observer, a new PRE key or peer id), remove one, or
  rotate a district's account key (remove, then add under the same name: two
  changes, two versions, approved together);
- :func:`approve` adds one validator's signature to every change (offline:
  it needs only the file and the validator's identity);
- :func:`transactions` turns the file into the transactions to submit.

The chain accepts a change with approvals from 2f+1 validators of the set of
its version (``chain.handlers.apply_district_change``); each commit ends the
epoch (``p2pcity.types.epoch``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pcity.chain.genesis import district_from_json, district_to_json
from p2pcity.chain.handlers import district_change_message
from p2pcity.crypto.keys import Identity, verify
from p2pcity.home import DistrictCard
from p2pcity.types.tx import Approval, District, DistrictChange, Transaction


class ChangeError(ValueError):
    """A change that cannot be proposed, approved or submitted (with the reason)."""


@dataclass(frozen=True)
class ChangeFile:
    chain_id: str
    changes: tuple[DistrictChange, ...]

    # --- the file ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "changes": [_change_json(c) for c in self.changes]}

    @classmethod
    def from_json(cls, data: Any) -> ChangeFile:
        try:
            changes = tuple(_change_of(c) for c in data["changes"])
            return cls(str(data["chain_id"]), changes)
        except (KeyError, TypeError, ValueError) as exc:
            raise ChangeError(f"not a change file: {exc}") from exc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ChangeFile:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ChangeError(f"cannot read change file {path}: {exc}") from exc

    # --- approvals -------------------------------------------------------------

    def approvers(self, index: int = 0) -> list[bytes]:
        """The accounts whose valid approval the ``index``-th change carries."""
        change = self.changes[index]
        message = district_change_message(self.chain_id, change)
        return [a.signer for a in change.approvals if verify(a.signer, message, a.signature)]


def _change_json(change: DistrictChange) -> dict[str, Any]:
    return {
        "action": change.action,
        "set_version": change.set_version,
        "district": district_to_json(change.district),
        "approvals": [{"signer": a.signer.hex(), "signature": a.signature.hex()} for a in change.approvals],
    }


def _change_of(data: dict[str, Any]) -> DistrictChange:
    district = district_from_json(data["district"])  # GenesisError is a ValueError: a ChangeError
    approvals = tuple(
        Approval(bytes.fromhex(a["signer"]), bytes.fromhex(a["signature"])) for a in data.get("approvals", ())
    )
    return DistrictChange(str(data["action"]), district, int(data["set_version"]), approvals)


def card_district(card: dict[str, Any], role: str | None) -> District:
    """The district of a card (``district.json``), with ``role`` if given."""
    try:
        parsed = DistrictCard(
            name=str(card["name"]),
            account=str(card["account"]),
            pre_key=str(card["pre_key"]),
            peer_id=str(card["peer_id"]),
            role=str(role or card.get("role", "validator")),
            addrs=tuple(str(a) for a in card.get("addrs", ())),
        )
        return parsed.district()
    except (KeyError, TypeError, ValueError) as exc:
        raise ChangeError(f"not a district card: {exc}") from exc


def propose(
    chain_id: str,
    current: dict[str, Any],
    *,
    card: dict[str, Any] | None = None,
    role: str | None = None,
    remove: str | None = None,
    rotate: str | None = None,
) -> ChangeFile:
    """The unsigned change(s) against ``current`` (the node's ``GET /validators`` answer).

    Exactly one of: ``card`` (add it, or update the district of that account:
    promote, demote, new PRE key or peer), ``remove`` (a district name),
    ``rotate`` (a district name, with ``card`` holding its new keys).
    """
    version = int(current["version"])
    by_name = {d["name"]: d for d in current["districts"]}
    by_account = {d["account"]: d for d in current["districts"]}
    if remove is not None:
        if card is not None or rotate is not None:
            raise ChangeError("--remove takes no --card and no --rotate")
        old = _named(by_name, remove)
        return ChangeFile(chain_id, (DistrictChange("remove", card_district(old, None), version, ()),))
    if card is None:
        raise ChangeError("give --card CARD (add or update), --remove NAME or --rotate NAME --card CARD")
    district = card_district(card, role)
    if rotate is not None:
        old = _named(by_name, rotate)
        if district.account.hex() == old["account"]:
            # Same account: the PRE key, peer id or addresses change in place.
            renamed = _renamed(district, rotate)
            return ChangeFile(chain_id, (DistrictChange("update", renamed, version, ()),))
        role = role or str(old["role"])
        new = _renamed(card_district(card, role), rotate)
        steps = (
            DistrictChange("remove", card_district(old, None), version, ()),
            DistrictChange("add", new, version + 1, ()),
        )
        return ChangeFile(chain_id, steps)
    action = "update" if district.account.hex() in by_account else "add"
    if action == "add" and district.name in by_name:
        raise ChangeError(f"district name {district.name!r} is taken")
    return ChangeFile(chain_id, (DistrictChange(action, district, version, ()),))


def _named(by_name: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    if name not in by_name:
        raise ChangeError(f"no district named {name!r} (see `p2pcity district list`)")
    return by_name[name]


def _renamed(district: District, name: str) -> District:
    return District(name, district.account, district.pre_key, district.peer_id, district.role, district.addrs)


def approve(change_file: ChangeFile, identity: Identity) -> ChangeFile:
    """Every change of the file, with ``identity``'s approval (replacing an earlier one of it)."""
    me = identity.signer.public_key
    signed = []
    for change in change_file.changes:
        message = district_change_message(change_file.chain_id, change)
        approvals = tuple(a for a in change.approvals if a.signer != me)
        approvals += (Approval(me, identity.signer.sign(message)),)
        signed.append(DistrictChange(change.action, change.district, change.set_version, approvals))
    return ChangeFile(change_file.chain_id, tuple(signed))


def transactions(change_file: ChangeFile, identity: Identity, first_nonce: int) -> list[Transaction]:
    """The file's changes as transactions from ``identity`` (any account may submit)."""
    return [
        Transaction.create(identity.signer, change_file.chain_id, first_nonce + i, change)
        for i, change in enumerate(change_file.changes)
    ]


__all__ = ["ChangeError", "ChangeFile", "approve", "card_district", "propose", "transactions"]
