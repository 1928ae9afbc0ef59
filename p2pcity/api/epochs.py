"""``GET /epochs?from=E``: the epoch-change proofs a light client follows from epoch ``E`` on.

The answer (docs/state-proofs.md, "Following epochs"):

- ``start``: the block epoch ``E`` starts from (the genesis for 0, else the last
  block of ``E - 1``): its canonical header and the proof of the validator set
  in its state. A client starting from a waypoint checks the waypoint's block
  id against this header and reads the set from the proof;
- ``ends``: one hand-over per epoch from ``E`` on, oldest first, at most
  ``limit``: the canonical ``EpochEnd`` (``p2pcity.types.epoch``) and the proof
  of the validator set in the state of its last block, which binds the
  ``next_validators`` the hand-over names (unsigned in the proof itself).

The set proofs are the ones pinned at the height that changed the set
(``p2pcity.chain.tree_pins.pin``), so they outlive the pruning of old versions.
The node adds nothing a client must trust: each piece is checked against the
set before it (``p2pcity.consensus.epochs.follow``) or against the waypoint.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query

from p2pcity.api.handle import NodeHandle
from p2pcity.chain import queries, tree_pins
from p2pcity.chain.state import VALIDATOR_SET
from p2pcity.codec import encode

MAX_ENDS = 64


def _set_proof(node: NodeHandle, height: int) -> dict[str, Any]:
    """The validator set pinned at ``height``, its proof and the height's roots."""
    state = node.committed_state()
    pinned = tree_pins.read_pinned(state, height, VALIDATOR_SET)
    if pinned is None:
        raise HTTPException(503, f"no validator-set proof kept at height {height}")
    roots, value, state_proof = pinned
    return {
        "value": None if value is None else value.hex(),
        "tree_root": roots.tree_root.hex(),
        "aux_root": roots.aux_root.hex(),
        "leaf_key": state_proof.leaf_key.hex(),
        "leaf_value": state_proof.leaf_value.hex(),
        "siblings": [s.hex() for s in state_proof.siblings],
    }


def _start_height(node: NodeHandle, epoch: int) -> int:
    entry = queries.epoch(node.committed_state(), epoch)
    if entry is None:
        raise HTTPException(404, f"no epoch {epoch} on this chain yet")
    return int(entry.start_height)


def add_epoch_routes(app: FastAPI, node: NodeHandle) -> None:
    @app.get("/epochs", summary="Epoch-change proofs from an epoch on (for light clients)")
    async def epochs(
        start: Annotated[int, Query(alias="from", ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_ENDS)] = MAX_ENDS,
    ) -> Any:
        height = _start_height(node, start)
        block = node.block_at(height)
        if block is None:
            raise HTTPException(503, f"the block at height {height} is not available")
        ends = []
        for number in range(start, start + limit):
            following = queries.epoch(node.committed_state(), number + 1)
            if following is None:
                break
            proof = node.epoch_end_at(following.start_height)
            if proof is None:  # synced past it from a peer that had none: others serve it
                break
            ends.append({"end": encode(proof).hex(), "validators": _set_proof(node, proof.last.height)})
        return {
            "chain_id": node.chain_id,
            "start": {
                "epoch": start,
                "header": encode(block.header).hex(),
                "validators": _set_proof(node, height),
            },
            "ends": ends,
        }
