"""Reading ledger entries from a node, each checked before it is used.

A node may refuse service but must not make a client accept a false dataset,
grant, regrant or validator key: every entry is checked against its id and the
owner's signature (a node cannot alter or fabricate one), and with a light
client (``proven``) proven on chain against a certified header as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from p2pcity.chain.access import (
    Fragments,
    ProxyHealth,
    dataset_entry_problem,
    fragments_entry_problem,
    fragments_of,
    grant_entry_problem,
    proxy_health,
)
from p2pcity.chain.entries import DatasetEntry, FragmentsEntry, GrantEntry
from p2pcity.chain.state import fragments_key
from p2pcity.client import Client
from p2pcity.client_light import LightClient
from p2pcity.codec import DecodeError, decode
from p2pcity.sharing.datakey import SharingError
from p2pcity.sharing.grants import default_threshold
from p2pcity.sharing.submit import chain_id


def _entry(client: Client, path: str, cls: type[Any]) -> Any:
    try:
        return decode(cls, bytes.fromhex(str(client.get(path)["entry"])))
    except (DecodeError, ValueError, KeyError) as exc:
        raise SharingError(f"the node sent a malformed ledger entry for {path}: {exc}") from exc


def dataset_entry(client: Client, dataset_id: bytes, proven: LightClient | None = None) -> DatasetEntry:
    """The dataset's ledger entry, checked against its id: the owner's signature over it and
    her proofs of possession. A node that alters or fabricates an entry is caught here; with
    ``proven``, the entry is also proven on chain against a certified header."""
    if proven is not None:
        found = proven.dataset(dataset_id)
        if found is None:
            raise SharingError(f"no dataset {dataset_id.hex()} (proven absent)")
        entry: DatasetEntry = found
    else:
        entry = _entry(client, f"/datasets/{dataset_id.hex()}/entry", DatasetEntry)
    problem = dataset_entry_problem(chain_id(client), dataset_id, entry)
    if problem is not None:
        raise SharingError(f"node {client.url} sent a dataset entry that does not verify: {problem}")
    return entry


def grant_entry(client: Client, grant_id: bytes, proven: LightClient | None = None) -> GrantEntry:
    """The grant's ledger entry, its terms checked against its id and the owner's signature;
    with ``proven``, proven on chain too (so its revocation and uses are the chain's)."""
    if proven is not None:
        found = proven.grant(grant_id)
        if found is None:
            raise SharingError(f"no grant {grant_id.hex()} (proven absent)")
        entry: GrantEntry = found
    else:
        entry = _entry(client, f"/grants/{grant_id.hex()}/entry", GrantEntry)
    problem = grant_entry_problem(chain_id(client), grant_id, entry)
    if problem is not None:
        raise SharingError(f"node {client.url} sent a grant entry that does not verify: {problem}")
    return entry


def grant_fragments(client: Client, entry: GrantEntry, proven: LightClient | None = None) -> Fragments:
    """The fragments ``entry``'s grant is served from now: its latest regrant's (checked against
    the owner's signature; with ``proven``, proven on chain, present or absent), else its own."""
    refreshed: FragmentsEntry | None
    if proven is not None:
        key = fragments_key(entry.grant_id)
        raw = proven.read(f"/grants/{entry.grant_id.hex()}/fragments", [key]).values[key]
        try:
            refreshed = None if raw is None else decode(FragmentsEntry, raw)
        except DecodeError as exc:
            raise SharingError(f"a proven regrant does not decode: {exc}") from exc
    else:
        try:
            raw_hex = client.get(f"/grants/{entry.grant_id.hex()}/entry").get("fragments")
            refreshed = None if raw_hex is None else decode(FragmentsEntry, bytes.fromhex(str(raw_hex)))
        except (DecodeError, ValueError) as exc:
            grant = entry.grant_id.hex()
            raise SharingError(f"the node sent a malformed regrant for grant {grant}: {exc}") from exc
    if refreshed is not None:
        problem = fragments_entry_problem(chain_id(client), entry, refreshed)
        if problem is not None:
            raise SharingError(f"node {client.url} sent a regrant that does not verify: {problem}")
    return fragments_of(entry, refreshed)


def grant_health(client: Client, fragments: Fragments, proven: LightClient | None = None) -> ProxyHealth:
    """How many of the fragments' holders are validators now, by the node (or proven)."""
    if proven is not None:
        _, districts = proven.validators()
        keys = {d.district.account: d.district.pre_key for d in districts}
    else:
        keys = validator_keys_of(client)
    return proxy_health(fragments, keys)


def validator_keys(nodes: Sequence[Client]) -> dict[bytes, bytes]:
    """Current validators' accounts -> PRE keys, as f+1 distinct nodes agree they are committed.

    One node could lie (every key its own: then it alone, with a revoked
    grantee, would hold ``threshold`` fragments), so the owner asks several
    and refuses on any disagreement or with fewer than f+1 distinct nodes
    (distinct by node id): at least one of f+1 is honest. The light client of
    issue 13 replaces this with proofs. The ledger also refuses fragments not
    sealed to the registered keys, whatever a node told the owner.
    """
    answers: dict[str, dict[bytes, bytes]] = {}
    for node in nodes:
        node_id = str(node.status().get("node_id", node.url))
        answers.setdefault(node_id, validator_keys_of(node))
    distinct = {tuple(sorted(a.items())) for a in answers.values()}
    if len(distinct) > 1:
        raise SharingError(
            f"nodes disagree about the validators' PRE keys ({', '.join(sorted(answers))}): "
            "one of them is lying or behind; not granting"
        )
    keys = next(iter(answers.values()))
    need = default_threshold(len(keys))  # f + 1
    if len(answers) < need:
        raise SharingError(
            f"the validators' PRE keys need the same answer from {need} distinct nodes, got {len(answers)}: "
            "give more nodes (--confirm-node)"
        )
    return keys


def validator_keys_of(client: Client) -> dict[bytes, bytes]:
    info = client.get("/validators")
    pre = {d["account"]: d["pre_key"] for d in info["districts"]}
    missing = [v for v in info["validators"] if v not in pre]
    if missing:
        raise SharingError(f"validators without a district entry: {', '.join(m[:16] for m in missing)}")
    return {bytes.fromhex(v): bytes.fromhex(pre[v]) for v in info["validators"]}
