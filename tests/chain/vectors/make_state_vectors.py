"""Test vectors of state proofs and of the envelope a light client checks (docs/state-proofs.md).

Deterministic: a chain of four validators with fixed keys, three blocks of records. Each
vector is a complete ``?proof=true`` envelope plus the verdict a correct verifier reaches
(``"ok"``, or the reason it must refuse). Regenerate with

    python -m tests.chain.vectors.make_state_vectors > tests/chain/vectors/state_proofs.json

(``tests/chain/test_proof_vectors.py`` fails when the file and this generator disagree).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from p2pcity.chain import proof, tree
from p2pcity.chain.state import VALIDATOR_SET, record_key
from p2pcity.codec import encode
from tests.factories import ChainBuilder, genesis_for, identities, record_tx

FORMAT = "p2pcity state-proof vectors v1: see docs/state-proofs.md"


def _envelope(chain: ChainBuilder, height: int, keys: list[bytes]) -> dict[str, Any]:
    block = chain.blocks[height]
    qc = chain.qc_for(block)
    entries = []
    roots = tree.read_roots(chain.state, height)
    assert roots is not None
    for key in keys:
        p = tree.prove(chain.state, roots, key)
        value = chain.state.state_get(key) if p.leaf_key == proof.key_hash(key) else None
        entries.append({
            "key": key.hex(),
            "value": None if value is None else value.hex(),
            "leaf_key": p.leaf_key.hex(),
            "leaf_value": p.leaf_value.hex(),
            "siblings": [s.hex() for s in p.siblings],
        })
    return {
        "chain_id": block.header.chain_id,
        "height": height,
        "header": encode(block.header).hex(),
        "qc": encode(qc).hex(),
        "tree_root": roots.tree_root.hex(),
        "aux_root": roots.aux_root.hex(),
        "entries": entries,
    }


def vectors() -> dict[str, Any]:
    validators = identities(4, seed=3)
    users = identities(3, seed=7)
    genesis = genesis_for(validators)
    chain = ChainBuilder(validators, genesis)
    for i in range(1, 4):
        chain.next_block([record_tx(u, i, f"ns{j}/doc{i}") for j, u in enumerate(users)])
    head = len(chain.blocks) - 1
    key = record_key("ns1/doc2")
    present = _envelope(chain, head, [key])
    absent = _envelope(chain, head, [record_key("ns1/none")])
    vset = _envelope(chain, head, [VALIDATOR_SET])
    cases: list[dict[str, Any]] = [
        {"name": "record present", "keys": [key.hex()], "envelope": present, "verdict": "ok"},
        {"name": "record absent", "keys": [absent["entries"][0]["key"]], "envelope": absent, "verdict": "ok"},
        {"name": "validator set", "keys": [VALIDATOR_SET.hex()], "envelope": vset, "verdict": "ok"},
    ]

    def tampered(name: str, base: dict[str, Any], keys: list[bytes], verdict: str, change: Any) -> None:
        env = copy.deepcopy(base)
        change(env)
        cases.append({"name": name, "keys": [k.hex() for k in keys], "envelope": env, "verdict": verdict})

    def flip(hex_text: str) -> str:
        raw = bytearray(bytes.fromhex(hex_text))
        raw[-1] ^= 1
        return raw.hex()

    tampered("changed value", present, [key], "value", lambda e: e["entries"][0].update(
        value=flip(e["entries"][0]["value"])))
    tampered("changed sibling", present, [key], "root", lambda e: e["entries"][0]["siblings"].__setitem__(
        0, flip(e["entries"][0]["siblings"][0])))
    tampered("fabricated absence", present, [key], "absence", lambda e: e["entries"][0].update(value=None))
    tampered("wrong tree root", present, [key], "state root",
             lambda e: e.update(tree_root=flip(e["tree_root"])))
    tampered("forged QC signature", present, [key], "quorum", lambda e: e.update(qc=flip(e["qc"])))
    tampered("QC of the parent", present, [key], "another block",
             lambda e: e.update(qc=encode(chain.qc_for(chain.blocks[head - 1])).hex()))
    tampered("header of a later epoch", present, [key], "epoch", lambda e: e.update(
        header=encode(dataclasses.replace(chain.blocks[head].header, epoch=1)).hex()))
    tampered("proof for another key", present, [record_key("ns1/doc3")], "key", lambda e: None)
    return {
        "format": FORMAT,
        "genesis": genesis.to_json(),
        "genesis_id": genesis.block().id.hex(),
        "validators": [v.hex() for v in genesis.validators],
        "cases": cases,
    }


if __name__ == "__main__":
    print(json.dumps(vectors(), indent=1))
