"""The benchmark-only switch ``P2PCITY_STATE_COMMITMENT=chained``: off unless asked for, and
when on, a block is rooted by the chained hash with no tree node written.

The node-level half (a node with the switch refuses every proof read in one line) is in
tests/node/test_light_client.py.
"""

from __future__ import annotations

import pytest

from p2pcity.chain import state, tree
from tests.factories import ChainBuilder, genesis_for, identities, record_tx

VALIDATORS = identities(4)
(CITIZEN,) = identities(1, seed=7)


def test_the_switch_is_off_unless_the_environment_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(state.COMMITMENT_ENV, raising=False)
    assert state._chained_from_env() is False
    monkeypatch.setenv(state.COMMITMENT_ENV, "tree")
    assert state._chained_from_env() is False
    monkeypatch.setenv(state.COMMITMENT_ENV, "chained")
    assert state._chained_from_env() is True
    # A typo refuses to start rather than measure the wrong thing.
    monkeypatch.setenv(state.COMMITMENT_ENV, "chain")
    with pytest.raises(RuntimeError, match="must be 'tree'"):
        state._chained_from_env()


def _tree_node_writes(writes: dict[bytes, bytes | None]) -> list[bytes]:
    return [k for k in writes if k.startswith(tree.TREE_PREFIX)]


def _two_blocks() -> ChainBuilder:
    chain = ChainBuilder(VALIDATORS, genesis_for(VALIDATORS))
    for nonce in (1, 2):
        chain.next_block([record_tx(CITIZEN, nonce, f"land/parcel-{nonce}")])
    return chain


def test_chained_blocks_write_no_tree_and_chain_their_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    honest = _two_blocks()  # the default: the tree
    monkeypatch.setattr(state, "CHAINED", True)
    chain = ChainBuilder(VALIDATORS, genesis_for(VALIDATORS))
    parent_root = chain.blocks[-1].header.state_root
    for nonce in (1, 2):
        block, result = chain.next_block([record_tx(CITIZEN, nonce, f"land/parcel-{nonce}")])
        assert _tree_node_writes(result.writes) == []
        ledger_writes = {k: v for k, v in result.writes.items() if not k.startswith(tree.TREE_PREFIX)}
        assert result.state_root == state.chained_state_root(parent_root, ledger_writes)
        parent_root = block.header.state_root
    # Same ledger state, different commitment: the two kinds of node cannot share a chain.
    assert chain.blocks[-1].header.state_root != honest.blocks[-1].header.state_root
    assert tree.read_roots(chain.state, 2) is None and tree.read_roots(honest.state, 2) is not None
    # The genesis is tree-rooted either way (its validator-set pin is what /epochs serves).
    assert chain.blocks[0].header.state_root == honest.blocks[0].header.state_root


def test_control_the_tree_run_does_write_tree_nodes() -> None:
    # The check above (no tree writes) would pass vacuously if blocks never wrote tree nodes.
    chain = ChainBuilder(VALIDATORS, genesis_for(VALIDATORS))
    _, result = chain.next_block([record_tx(CITIZEN, 1, "land/parcel-1")])
    assert len(_tree_node_writes(result.writes)) > 0
    assert result.state_root != state.chained_state_root(
        chain.blocks[0].header.state_root,
        {k: v for k, v in result.writes.items() if not k.startswith(tree.TREE_PREFIX)},
    )



class _Untouchable:
    """A node handle that fails any use: the refusal must come before the node is read."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the proof route read {name} of a node that keeps no tree")


def test_the_proof_routes_refuse_when_the_switch_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import HTTPException  # noqa: PLC0415 - the API only here

    from p2pcity.api import proofs  # noqa: PLC0415

    monkeypatch.setattr(state, "CHAINED", True)
    with pytest.raises(HTTPException) as refused:
        proofs.envelope(_Untouchable(), [state.VALIDATOR_SET])  # type: ignore[arg-type]
    assert refused.value.status_code == 501 and "keeps no state tree" in str(refused.value.detail)
