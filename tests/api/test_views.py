"""The API's block views say the epoch a block was signed in (pure: no node needed)."""

from __future__ import annotations

from dataclasses import replace

from p2pcity.api import models, views
from p2pcity.types.block import Block
from tests.factories import ChainBuilder, genesis_for, identities


def test_a_block_of_a_later_epoch_is_shown_with_its_epoch() -> None:
    ids = identities(4)
    chain = ChainBuilder(ids, genesis_for(ids))
    block, _ = chain.next_block([])
    later = Block.create(ids[0].signer, replace(block.header, epoch=3), block.txs)
    for view in (views.block_view(later, chain.qc_for(block)), views.block_summary(later)):
        assert view["epoch"] == 3
    # Through the response model too: a field left out is an error there, not a default of 0.
    assert models.Block.model_validate(views.block_view(later)).epoch == 3
    assert views.block_view(later).keys() >= views.block_summary(later).keys()
