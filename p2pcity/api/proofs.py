"""Proof-carrying reads: ``?proof=true`` answers with what a light client needs to trust nothing.

The envelope (docs/state-proofs.md) carries the certified header's canonical
bytes, the QC that certifies it, the two roots its state root binds, and per
state key the raw value (or null) with its tree proof. A client checks all of
it (``p2pcity.client_light``) and decodes the value itself; the usual JSON view
rides along under ``entry`` for convenience only.

The height proven is the last committed one when its QC is at hand, else the
one below (whose QC is the head block's justify). Endpoints run on the node's
trio thread, so the state, header and QC read here are of one moment.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from p2pcity.api.handle import NodeHandle
from p2pcity.chain import state as chain_state
from p2pcity.chain import tree
from p2pcity.chain.proof import key_hash, value_hash
from p2pcity.codec import encode
from p2pcity.types.block import QuorumCert


def _certified_height(node: NodeHandle) -> tuple[int, QuorumCert]:
    head = node.committed_height()
    for height in (head, head - 1):
        if height < 0:
            break
        qc = node.qc_for(height)
        if qc is not None:
            return height, qc
    raise HTTPException(503, "no certified header to prove against yet")


def envelope(node: NodeHandle, keys: list[bytes], entry: Any = None) -> JSONResponse:
    """The proofs of ``keys`` (present or absent) against the last certified header."""
    if chain_state.CHAINED:
        raise HTTPException(501, chain_state.NO_TREE)
    height, qc = _certified_height(node)
    block = node.block_at(height)
    if block is None:
        raise HTTPException(503, f"the block at height {height} is not available")
    state = node.committed_state()
    entries = []
    roots = tree.Roots(0, b"", b"")
    try:
        for key in keys:
            roots, proof = tree.prove_at(state, height, key)
            value = _value_at(state, height, key, proof.leaf_key, proof.leaf_value)
            entries.append(
                {
                    "key": key.hex(),
                    "value": None if value is None else value.hex(),
                    "leaf_key": proof.leaf_key.hex(),
                    "leaf_value": proof.leaf_value.hex(),
                    "siblings": [s.hex() for s in proof.siblings],
                }
            )
    except tree.TreeError as exc:
        raise HTTPException(503, f"cannot prove at height {height}: {exc}") from exc
    return JSONResponse({
        "chain_id": block.header.chain_id,
        "height": height,
        "header": encode(block.header).hex(),
        "qc": encode(qc).hex(),
        "tree_root": roots.tree_root.hex(),
        "aux_root": roots.aux_root.hex(),
        "entries": entries,
        "entry": entry,
    })


def _value_at(state: Any, height: int, key: bytes, leaf_key: bytes, leaf_value: bytes) -> bytes | None:
    """The value of ``key`` the proof of ``height`` shows: the committed one, when it is that one."""
    if leaf_key != key_hash(key):
        return None
    value: bytes | None = state.state_get(key)
    if value is None or value_hash(value) != leaf_value:
        # The head moved past ``height`` for this key (the proof is one block behind the head).
        raise HTTPException(503, "the value changed at the head; retry")
    return value
