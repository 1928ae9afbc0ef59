"""The core as a state machine: events in, actions out, in the right order."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcity.codec import DecodeError
from p2pcity.consensus import (
    Action,
    BlockFetched,
    Broadcast,
    BuildProposal,
    Commit,
    Core,
    FetchBlock,
    PersistSafety,
    ProposalBuilt,
    ProposalReceived,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    TimeoutCertReceived,
    TimeoutReceived,
    TimerFired,
    VoteReceived,
    event_from_bytes,
)
from p2pcity.types.block import tx_root
from p2pcity.types.consensus import (
    DoubleProposal,
    DoubleVote,
    Proposal,
    Timeout,
    TimeoutCert,
    Vote,
    encode_message,
)
from tests.sim.builders import (
    LocalNet,
    SimApp,
    genesis_qc,
    keys,
    make_block,
    make_chain,
    make_core,
    publics,
    qc_for,
    rebuild,
    tc_for,
    timeout,
    vote,
)

K = keys(4)
VALIDATORS = publics(K)
NOW = 0  # the clock of every core here: block times are small (see builders.make_block)


def core_of(index: int, **kwargs: object) -> Core:
    core = make_core(K[index], VALIDATORS, **kwargs)  # type: ignore[arg-type]
    core.handle(Start())
    return core


def sent(actions: list[Action], kind: type) -> list[object]:
    return [
        a.message
        for a in actions
        if isinstance(a, Send | Broadcast) and isinstance(a.message, kind)
    ]


def not_leader_of(*views: int) -> int:
    leaders = {VALIDATORS.index(VALIDATORS[v % 4]) for v in views}
    return next(i for i in range(4) if i not in leaders)


# --- the happy path ------------------------------------------------------------


def test_four_cores_agree_on_a_growing_chain() -> None:
    net = LocalNet(4)
    net.start()
    net.run(2000)
    heights = net.heights()
    assert min(heights) >= 20
    shortest = min(len(c) for c in net.committed.values())
    ids = {tuple(b.id for b in chain[:shortest]) for chain in net.committed.values()}
    assert len(ids) == 1
    chain = next(iter(net.committed.values()))
    assert [b.height for b in chain] == list(range(1, len(chain) + 1))
    assert all(b.txs for b in chain)  # transactions are batched into blocks


def test_seven_cores_agree_too() -> None:
    net = LocalNet(7)
    net.start()
    net.run(3000)
    assert min(net.heights()) >= 10


def test_safety_state_is_persisted_before_every_signed_message_and_commit() -> None:
    net = LocalNet(4)
    net.start()
    net.run(500)
    net.fire_timers()
    net.run(200)
    checked = 0
    for key, lists in net.lists.items():
        for actions in lists:
            durable = None
            for action in actions:
                if isinstance(action, PersistSafety):
                    durable = action.state
                    continue
                message = getattr(action, "message", None)
                view = None
                if isinstance(message, Vote) and message.signer == key:
                    view = message.view
                elif isinstance(message, Proposal) and message.block.header.proposer == key:
                    view = message.block.view
                if view is not None:
                    assert durable is not None and durable.last_voted_view >= view
                    checked += 1
                if isinstance(message, Timeout) and message.signer == key:
                    assert durable is not None or net.disk[key].last_timeout_view >= message.view
                    checked += 1
                if isinstance(action, Commit):
                    assert durable is not None
    assert checked > 100


def test_votes_go_to_the_next_leader() -> None:
    g = make_chain([], K)[0]
    b1 = make_block(g, 1, K)
    voter = not_leader_of(1, 2)
    actions = core_of(voter).handle(ProposalReceived(Proposal(b1), now_ms=NOW))
    sends = [a for a in actions if isinstance(a, Send)]
    assert len(sends) == 1 and sends[0].to == VALIDATORS[2 % 4]
    assert isinstance(sends[0].message, Vote) and sends[0].message.block_id == b1.id
    assert actions.index(next(a for a in actions if isinstance(a, PersistSafety))) < actions.index(
        sends[0]
    )


def test_the_next_leader_aggregates_a_qc_and_asks_for_a_proposal() -> None:
    b1 = make_chain([1], K)[1]
    leader = core_of(2)
    leader.handle(ProposalReceived(Proposal(b1), now_ms=NOW))  # its own vote counts too
    actions: list[Action] = []
    for k in K:
        if k.public_key != VALIDATORS[2]:
            actions += leader.handle(VoteReceived(vote(k, b1)))
    assert leader.view == 2 and leader.safety.high_qc.block_id == b1.id
    build = [a for a in actions if isinstance(a, BuildProposal)]
    assert len(build) == 1 and build[0].view == 2 and build[0].parent_id == b1.id
    assert build[0].height == 2 and build[0].justify.view == 1


def test_proposal_built_must_be_what_was_asked_for() -> None:
    core = core_of(1)  # the leader of view 1
    request = next(iter(core.handle(TimerFired(99))), None)  # stale timer: nothing
    assert request is None
    ask = BuildProposal(1, make_chain([], K)[0].id, genesis_qc(), 1)
    built = SimApp().build(ask, make_chain([], K)[0], VALIDATORS[1], 0)
    wrong = ProposalBuilt(replace(built.header, height=7), built.txs)
    assert not sent(core.handle(wrong), Proposal)
    assert core.dropped["proposal not as requested"] == 1


# --- restart -------------------------------------------------------------------


def test_a_restarted_validator_never_votes_twice_in_a_view() -> None:
    b1 = make_chain([1], K)[1]
    twin = rebuild(b1, K[1], timestamp_ms=4242)  # the leader equivocates
    voter = not_leader_of(1, 2)
    first = core_of(voter)
    actions = first.handle(ProposalReceived(Proposal(b1), now_ms=NOW))
    assert sent(actions, Vote)
    persisted = next(a.state for a in actions if isinstance(a, PersistSafety))
    again = make_core(K[voter], VALIDATORS, safety=persisted)
    assert again.view == 1
    again.handle(Start())
    assert not sent(again.handle(ProposalReceived(Proposal(twin), now_ms=NOW)), Vote)
    assert not sent(again.handle(ProposalReceived(Proposal(b1), now_ms=NOW)), Vote)


def test_a_restarted_leader_never_proposes_twice_in_a_view() -> None:
    net = LocalNet(4)
    leader = VALIDATORS[1]
    net.handle(leader, Start())
    net.run(1)  # ProposalBuilt -> the signed proposal leaves
    assert any(sent(actions, Proposal) for actions in net.lists[leader])
    again = make_core(K[1], VALIDATORS, safety=net.disk[leader])
    actions = again.handle(Start())
    assert not [a for a in actions if isinstance(a, BuildProposal)]


def test_a_restarted_validator_does_not_vote_in_a_view_it_timed_out_in() -> None:
    b1 = make_chain([1], K)[1]
    voter = not_leader_of(1, 2)
    first = core_of(voter)
    actions = first.handle(TimerFired(1))
    assert sent(actions, Timeout)
    persisted = next(a.state for a in actions if isinstance(a, PersistSafety))
    assert persisted.last_timeout_view == 1
    again = make_core(K[voter], VALIDATORS, safety=persisted)
    again.handle(Start())
    assert not sent(again.handle(ProposalReceived(Proposal(b1), now_ms=NOW)), Vote)


def test_a_restarted_validator_resumes_from_its_committed_block() -> None:
    chain = make_chain([1, 2, 3, 4, 5], K)
    voter = not_leader_of(6, 7)
    core = core_of(voter)
    for block in chain[1:]:
        core.handle(ProposalReceived(Proposal(block), now_ms=NOW))
    assert core.committed.height == 2  # b5 certifies b4: b2 <- b3 <- b4 is a direct 3-chain
    again = make_core(K[voter], VALIDATORS, safety=core.safety, root=core.committed)
    again.handle(Start())
    b6 = make_block(chain[5], 6, K)
    actions = again.handle(ProposalReceived(Proposal(b6), now_ms=NOW))
    for missing in (chain[5], chain[4], chain[3]):  # what the store did not keep
        fetches = [a.block_id for a in actions if isinstance(a, FetchBlock)]
        assert fetches == [missing.id]
        actions = again.handle(BlockFetched(missing, now_ms=NOW))
    assert sent(actions, Vote)
    assert [b.height for a in actions if isinstance(a, Commit) for b in a.blocks] == [3]


# --- views ---------------------------------------------------------------------


def test_timeouts_make_a_tc_that_moves_everyone_to_the_next_view() -> None:
    net = LocalNet(4)
    net.down = {VALIDATORS[1]}  # the leader of view 1 is silent
    for key in net.cores:
        if key not in net.down:
            net.handle(key, Start())
    net.fire_timers()
    net.run(200)
    for key, core in net.cores.items():
        if key not in net.down:
            assert core.view >= 2
            assert any(sent(actions, TimeoutCert) for actions in net.lists[key])


def test_a_lagging_node_jumps_on_a_qc_or_tc_of_a_later_view() -> None:
    chain = make_chain([1, 2, 3, 9], K)
    core = core_of(0)
    core.handle(TimeoutCertReceived(tc_for(20, K[:3], genesis_qc())))
    assert core.view == 21
    core = core_of(2)
    # The timeout carries the QC of view 3: the core asks for its block at once (who leads
    # view 4 is decided on that block: leader reputation), and only once.
    actions = core.handle(TimeoutReceived(timeout(K[1], 12, chain[4].justify)))
    assert core.view == 4
    actions += core.handle(ProposalReceived(Proposal(chain[4]), now_ms=NOW))  # justify = QC of view 3
    assert core.view == 4 and len([a for a in actions if isinstance(a, FetchBlock)]) == 1


def test_f_plus_one_timeouts_pull_a_node_into_their_view() -> None:
    core = core_of(0)
    core.handle(TimeoutReceived(timeout(K[1], 7, genesis_qc())))
    assert core.view == 1
    actions = core.handle(TimeoutReceived(timeout(K[2], 7, genesis_qc())))
    # It joined view 7 and timed out there too; with its own that made 2f+1: a TC, view 8.
    mine = [t for t in sent(actions, Timeout) if isinstance(t, Timeout)]
    assert mine and mine[0].view == 7 and mine[0].signer == VALIDATORS[0]
    assert [tc.view for tc in sent(actions, TimeoutCert)] == [7]  # type: ignore[attr-defined]
    assert core.view == 8


def test_a_timer_reports_its_vote_and_re_arms_with_back_off() -> None:
    b1 = make_chain([1], K)[1]
    voter = not_leader_of(1, 2)
    core = core_of(voter)
    core.handle(ProposalReceived(Proposal(b1), now_ms=NOW))
    actions = core.handle(TimerFired(1))
    assert sent(actions, Vote) and sent(actions, Timeout)
    timers = [a for a in actions if isinstance(a, SetTimer)]
    assert timers and timers[-1].view == 1 and timers[-1].delay_ms == 200  # doubled


# --- fetching --------------------------------------------------------------------


def test_missing_ancestors_are_fetched_then_the_proposal_is_voted() -> None:
    chain = make_chain([1, 2, 3], K)
    voter = not_leader_of(3, 4)
    core = core_of(voter)
    actions = core.handle(ProposalReceived(Proposal(chain[3]), now_ms=NOW))
    assert [a.block_id for a in actions if isinstance(a, FetchBlock)] == [chain[2].id]
    assert not sent(actions, Vote)
    actions = core.handle(BlockFetched(chain[2], now_ms=NOW))
    assert [a.block_id for a in actions if isinstance(a, FetchBlock)] == [chain[1].id]
    actions = core.handle(BlockFetched(chain[1], now_ms=NOW))
    votes = sent(actions, Vote)
    assert len(votes) == 1 and isinstance(votes[0], Vote) and votes[0].block_id == chain[3].id


def test_unsolicited_blocks_are_ignored() -> None:
    chain = make_chain([1, 2], K)
    core = core_of(0)
    assert core.handle(BlockFetched(chain[1], now_ms=NOW)) == []
    assert core.dropped["unsolicited block"] == 1 and chain[1].id not in core.tree


# --- what is refused -------------------------------------------------------------


def test_invalid_messages_are_dropped_and_counted_never_raised() -> None:
    g, b1, b2 = make_chain([1, 2], K)
    outsider = keys(5, seed=7)[0]
    voter = not_leader_of(1, 2)
    core = core_of(voter)
    bad = [
        ProposalReceived(Proposal(rebuild(b1, K[0], proposer=VALIDATORS[0])), now_ms=NOW),  # wrong leader
        ProposalReceived(Proposal(replace(b1, signature=bytes(64))), now_ms=NOW),  # forged signature
        ProposalReceived(Proposal(rebuild(b1, K[1], chain_id="elsewhere")), now_ms=NOW),
        ProposalReceived(Proposal(rebuild(b1, K[1], tx_root=tx_root(())[::-1])), now_ms=NOW),  # body
        ProposalReceived(Proposal(make_block(g, 1, K, justify=qc_for(b2, K[:2]))), now_ms=NOW),  # weak QC
        ProposalReceived(Proposal(b2, tc_for(1, K[:2], genesis_qc())), now_ms=NOW),  # weak TC
        VoteReceived(vote(outsider, b1)),
        VoteReceived(replace(vote(K[0], b1), signature=bytes(64))),
        TimeoutReceived(timeout(outsider, 3, genesis_qc())),
        TimeoutReceived(replace(timeout(K[0], 3, genesis_qc()), view=4)),
        TimeoutCertReceived(tc_for(3, [K[0], K[1], outsider], genesis_qc())),
    ]
    for event in bad:
        actions = core.handle(event)
        assert not sent(actions, Vote) and not sent(actions, Timeout)
    assert core.view == 1 and len(core.tree) == 1
    assert sum(core.dropped.values()) == len(bad)
    assert sent(core.handle(ProposalReceived(Proposal(b1), now_ms=NOW)), Vote)  # the real one still works


def test_a_payload_the_app_rejects_gets_no_vote() -> None:
    b1 = make_chain([1], K)[1]
    bad = rebuild(b1, K[1], state_root=bytes(32))
    core = core_of(not_leader_of(1, 2))
    assert not sent(core.handle(ProposalReceived(Proposal(bad), now_ms=NOW)), Vote)
    assert core.dropped["payload rejected"] == 1


def test_a_block_conflicting_with_the_lock_gets_no_vote() -> None:
    chain = make_chain([1, 2, 3], K)
    voter = not_leader_of(3, 4, 5)
    core = core_of(voter)
    for block in chain[1:]:
        core.handle(ProposalReceived(Proposal(block), now_ms=NOW))
    assert core.safety.locked_qc.view == 1  # b3 carries QC(b2), which carries QC(b1)
    # The leader of view 5 forks from genesis with an old QC, entering view 5 by a TC.
    fork = make_block(chain[0], 5, K)
    tc = tc_for(4, K[:3], chain[3].justify)
    actions = core.handle(ProposalReceived(Proposal(fork, tc), now_ms=NOW))
    assert core.view == 5 and not sent(actions, Vote)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_fed_to_a_core_never_raise(data: bytes) -> None:
    core = core_of(0)
    try:
        event = event_from_bytes(data, now_ms=NOW)
    except DecodeError:
        return
    core.handle(event)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_messages_fed_to_a_core_never_raise(data: st.DataObject) -> None:
    b2 = make_chain([1, 2], K)[2]
    message = data.draw(
        st.sampled_from(
            [
                Proposal(b2, tc_for(1, K[:3], b2.justify)),
                vote(K[0], b2),
                timeout(K[1], 3, b2.justify),
                tc_for(3, K[:3], b2.justify),
            ]
        )
    )
    raw = bytearray(encode_message(message))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        event = event_from_bytes(bytes(raw), now_ms=NOW)
    except DecodeError:
        return
    core_of(0).handle(event)


# --- evidence --------------------------------------------------------------------


def test_an_equivocating_proposer_is_reported_with_both_signed_blocks() -> None:
    b1 = make_chain([1], K)[1]
    twin = rebuild(b1, K[1], timestamp_ms=777)
    core = core_of(not_leader_of(1, 2))
    core.handle(ProposalReceived(Proposal(b1), now_ms=NOW))
    actions = core.handle(ProposalReceived(Proposal(twin), now_ms=NOW))
    reports = [a.evidence for a in actions if isinstance(a, ReportEvidence)]
    assert len(reports) == 1 and isinstance(reports[0], DoubleProposal) and reports[0].verify()
    assert core.evidence == (reports[0],)


def test_a_double_voter_is_reported_by_the_next_leader() -> None:
    b1 = make_chain([1], K)[1]
    twin = rebuild(b1, K[1], timestamp_ms=777)
    leader = core_of(2)
    leader.handle(VoteReceived(vote(K[0], b1)))
    actions = leader.handle(VoteReceived(vote(K[0], twin)))
    reports = [a.evidence for a in actions if isinstance(a, ReportEvidence)]
    assert len(reports) == 1 and isinstance(reports[0], DoubleVote)
    assert reports[0].offender == VALIDATORS[0]


def test_with_seven_validators_f_plus_one_timeouts_pull_without_a_tc() -> None:
    k7 = keys(7)
    validators = publics(k7)
    core = make_core(k7[0], validators)
    core.handle(Start())
    core.handle(TimeoutReceived(timeout(k7[1], 9, genesis_qc())))
    core.handle(TimeoutReceived(timeout(k7[2], 9, genesis_qc())))
    assert core.view == 1  # f = 2: two could both be byzantine
    actions = core.handle(TimeoutReceived(timeout(k7[3], 9, genesis_qc())))
    assert core.view == 9  # three include an honest one: join (four of five for a TC)
    assert [t.view for t in sent(actions, Timeout)] == [9]  # type: ignore[attr-defined]
    assert not sent(actions, TimeoutCert)


def test_tiny_validator_sets_make_progress_too() -> None:
    for n in (1, 2, 3):
        net = LocalNet(n)
        net.start()
        net.run(600)
        assert min(net.heights()) >= 10, n
