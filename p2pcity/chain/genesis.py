"""The genesis document: chain id, the founding districts and their keys.

It is a JSON file that every district receives from the bootstrap operator;
its hash pins the chain, so two nodes with different genesis files refuse to
talk to each other's blocks. The genesis block (height 0, view 0) has no
transactions; its state holds the founding districts and validator set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from p2pcity.chain.entries import DistrictEntry, ValidatorSet
from p2pcity.chain.state import VALIDATOR_SET, MemoryState, district_key, genesis_roots
from p2pcity.codec import U64, MaxLen, Name, encode
from p2pcity.crypto.hashing import EMPTY_ROOT, sha256
from p2pcity.crypto.keys import PRE_PUBLIC_KEY_SIZE, PUBLIC_KEY_SIZE
from p2pcity.types.block import GENESIS_VIEW, Block, BlockHeader, QuorumCert
from p2pcity.types.tx import District

ZERO_HASH = bytes(32)
ROLES = ("validator", "observer")


class GenesisError(ValueError):
    """A genesis file that is missing, malformed or inconsistent."""


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: Name
    genesis_time_ms: U64
    districts: Annotated[tuple[District, ...], MaxLen(1024)]
    bootstrap: Annotated[tuple[Name, ...], MaxLen(64)] = ()  # multiaddrs of bootstrap nodes
    extra: dict[str, Any] = field(default_factory=dict, compare=False, metadata={"wire": False})

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if not self.chain_id or not all(c.isalnum() or c in "-_." for c in self.chain_id):
            raise GenesisError("chain_id must be non-empty letters, digits, '-', '_' or '.'")
        accounts = [d.account for d in self.districts]
        if len(set(accounts)) != len(accounts):
            raise GenesisError("two districts share an account key")
        names = [d.name for d in self.districts]
        if len(set(names)) != len(names):
            raise GenesisError("two districts share a name")
        for d in self.districts:
            if d.role not in ROLES:
                raise GenesisError(f"district {d.name!r}: role must be one of {ROLES}")
        if not self.validators:
            raise GenesisError("genesis needs at least one validator district")

    @property
    def validators(self) -> tuple[bytes, ...]:
        return tuple(sorted(d.account for d in self.districts if d.role == "validator"))

    @property
    def hash(self) -> bytes:
        return sha256(
            encode(_GenesisWire(self.chain_id, self.genesis_time_ms, self.districts, self.bootstrap))
        )

    def state_writes(self) -> dict[bytes, bytes | None]:
        """The genesis state: the founding districts, the validator set and their state tree."""
        writes = self._ledger_writes()
        _, tree_writes = genesis_roots(self.hash, writes)
        return {**writes, **tree_writes}

    def _ledger_writes(self) -> dict[bytes, bytes | None]:
        writes: dict[bytes, bytes | None] = {
            VALIDATOR_SET: encode(ValidatorSet(0, self.validators)),
        }
        for d in self.districts:
            writes[district_key(d.account)] = encode(DistrictEntry(d, 0))
        return writes

    def state(self) -> MemoryState:
        state = MemoryState()
        state.apply(self.state_writes())
        return state

    def block(self) -> Block:
        """The genesis block; every node derives the same one from the same file."""
        header = BlockHeader(
            chain_id=self.chain_id,
            epoch=0,
            height=0,
            view=GENESIS_VIEW,
            parent_id=ZERO_HASH,
            justify=QuorumCert.genesis(ZERO_HASH),
            proposer=bytes(PUBLIC_KEY_SIZE),
            timestamp_ms=self.genesis_time_ms,
            tx_root=EMPTY_ROOT,
            tx_count=0,
            state_root=genesis_roots(self.hash, self._ledger_writes())[0],
        )
        return Block(header, (), bytes(64))

    def genesis_qc(self) -> QuorumCert:
        """The certificate every chain starts from: view 0, for the genesis block, no votes."""
        return QuorumCert.genesis(self.block().id)

    # --- JSON file ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "districts": [district_to_json(d) for d in self.districts],
            "bootstrap": list(self.bootstrap),
            **self.extra,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Genesis:
        if not isinstance(obj, dict):
            raise GenesisError("genesis must be a JSON object")
        try:
            districts = tuple(district_from_json(d) for d in obj["districts"])
            known = {"chain_id", "genesis_time_ms", "districts", "bootstrap"}
            genesis = cls(
                chain_id=_str(obj["chain_id"], "chain_id"),
                genesis_time_ms=_int(obj["genesis_time_ms"], "genesis_time_ms"),
                districts=districts,
                bootstrap=tuple(_str(a, "bootstrap") for a in obj.get("bootstrap", [])),
                extra={k: v for k, v in obj.items() if k not in known},
            )
        except KeyError as exc:
            raise GenesisError(f"genesis is missing {exc.args[0]!r}") from exc
        except TypeError as exc:
            raise GenesisError(f"genesis is malformed: {exc}") from exc
        return genesis

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            obj = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise GenesisError(f"genesis file {path} does not exist") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GenesisError(f"cannot read genesis file {path}: {exc}") from exc
        try:
            return cls.from_json(obj)
        except GenesisError as exc:
            raise GenesisError(f"{path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _GenesisWire:
    chain_id: Name
    genesis_time_ms: U64
    districts: Annotated[tuple[District, ...], MaxLen(1024)]
    bootstrap: Annotated[tuple[Name, ...], MaxLen(64)]


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise GenesisError(f"{what} must be a string")
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GenesisError(f"{what} must be a non-negative integer")
    return value


def _hex(value: Any, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(_str(value, what))
    except ValueError as exc:
        raise GenesisError(f"{what} is not hex") from exc
    if len(raw) != size:
        raise GenesisError(f"{what} must be {size} bytes")
    return raw


def district_to_json(d: District) -> dict[str, Any]:
    """A district as the genesis file and change files (``p2pcity.changes``) write it."""
    return {
        "name": d.name,
        "account": d.account.hex(),
        "pre_key": d.pre_key.hex(),
        "peer_id": d.peer_id,
        "role": d.role,
        "addrs": list(d.addrs),
    }


def district_from_json(obj: Any) -> District:
    """The inverse of :func:`district_to_json`, each field checked (GenesisError says which)."""
    if not isinstance(obj, dict):
        raise GenesisError("each district must be a JSON object")
    name = _str(obj.get("name"), "district name")
    return District(
        name=name,
        account=_hex(obj.get("account"), PUBLIC_KEY_SIZE, f"district {name!r} account"),
        pre_key=_hex(obj.get("pre_key"), PRE_PUBLIC_KEY_SIZE, f"district {name!r} pre_key"),
        peer_id=_str(obj.get("peer_id", ""), f"district {name!r} peer_id"),
        role=_str(obj.get("role", "validator"), f"district {name!r} role"),
        addrs=tuple(_str(a, f"district {name!r} addrs") for a in obj.get("addrs", [])),
    )
